// Every endpoint of the admin listener: one import per file (src/admin/endpoint.ts says how to write one).
// GET /metrics lives in metrics.ts (its own file, added beside these).
import type { AdminEndpoint } from '../endpoint.ts';
import { purgeCache } from './cache.ts';
import { getCertificates } from './certificates.ts';
import { getConfig, validateConfig } from './config.ts';
import { getDashboard, getDashboardAsset, getDashboardStream, getDashboardVendor } from './dashboard.ts';
import { getEvents } from './events.ts';
import { healthz, readyz } from './health.ts';
import { putLogLevel } from './log-level.ts';
import { getOpenApi } from './openapi.ts';
import { reload } from './reload.ts';
import { getRoutes } from './routes.ts';
import { drainTarget, getUpstreams, undrainTarget } from './upstreams.ts';

export const ADMIN_ENDPOINTS: readonly AdminEndpoint[] = [
  healthz,
  readyz,
  getConfig,
  validateConfig,
  getRoutes,
  getUpstreams,
  drainTarget,
  undrainTarget,
  purgeCache,
  reload,
  getEvents,
  getCertificates,
  putLogLevel,
  getOpenApi,
  getDashboard,
  getDashboardAsset,
  getDashboardVendor,
  getDashboardStream,
];
