// Every endpoint of the admin listener: one import per file (src/admin/endpoint.ts says how to write one).
import type { AdminEndpoint } from '../endpoint.ts';
import { purgeCache } from './cache.ts';
import { validateConfig } from './config.ts';
import { getDashboard, getDashboardAsset, getDashboardStream, getDashboardVendor } from './dashboard.ts';
import { deleteRedisRegistration, putRedisRegistration } from './discovery.ts';
import { getEvents } from './events.ts';
import { postExplain } from './explain.ts';
import { healthz, readyz } from './health.ts';
import { putLogLevel } from './log-level.ts';
import { getMetrics } from './metrics.ts';
import { getOpenApi } from './openapi.ts';
import { reload } from './reload.ts';
import { getCertificates, getConfig, getRoutes } from './state.ts';
import { drainTarget, getUpstreams, undrainTarget } from './upstreams.ts';

export const ADMIN_ENDPOINTS: readonly AdminEndpoint[] = [
  healthz,
  readyz,
  getMetrics,
  getConfig,
  validateConfig,
  getRoutes,
  postExplain,
  getUpstreams,
  drainTarget,
  undrainTarget,
  putRedisRegistration,
  deleteRedisRegistration,
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
