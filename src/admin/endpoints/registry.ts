// Every endpoint of the admin listener: one import per file (src/admin/endpoint.ts says how to write one).
// GET /metrics lives in metrics.ts (its own file, added beside these).
import type { AdminEndpoint } from '../endpoint.ts';
import { purgeCache } from './cache.ts';
import { validateConfig } from './config.ts';
import { getEvents } from './events.ts';
import { healthz, readyz } from './health.ts';
import { putLogLevel } from './log-level.ts';
import { getOpenApi } from './openapi.ts';
import { reload } from './reload.ts';
import { getCertificates, getConfig, getRoutes } from './state.ts';
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
];
