// The live dashboard: GET / (the page, no token: it asks for one and sends it as Bearer on every API call),
// GET /dashboard/:file and /dashboard/vendor/:file (its scripts and styles, no token: they hold no data), and
// GET /api/dashboard/stream (token): a summary once a second as Server-Sent Events. The page reads the stream
// with fetch() so the token travels in the Authorization header (EventSource cannot send one, and a token in a
// URL ends up in logs and history).
import type { ServerResponse } from 'node:http';
import { TurnpikeError } from '../../errors.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { dashboardAssets, type Asset } from '../dashboard-assets.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { describe } from '../admin-ops.ts';
import type { AdminContext } from '../endpoint.ts';

const TICK_MS = 1000;
/** A reader this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED = 1024 * 1024;

function sendAsset(res: ServerResponse, asset: Asset, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    'content-type': asset.contentType,
    'content-length': asset.body.length,
    'cache-control': asset.cacheControl,
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : asset.body);
}

export const getDashboard = defineAdminEndpoint({
  method: 'GET',
  path: '/',
  auth: 'none',
  summary: 'the live dashboard (an HTML page; it asks for an admin token and uses it on the API calls)',
  handle(_req, res) {
    const assets = dashboardAssets();
    sendAsset(res, assets.page, {
      'content-security-policy': assets.csp,
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    });
  },
});

function assetCall(path: string, pick: (name: string) => Asset | undefined) {
  return defineAdminEndpoint({
    method: 'GET',
    path,
    auth: 'none',
    summary: 'a static file of the dashboard (scripts and styles only, no data)',
    handle(_req, res, params) {
      const asset = pick(params.file ?? '');
      if (asset === undefined) throw new TurnpikeError('TP_ADMIN_NOT_FOUND', 'no such dashboard file');
      sendAsset(res, asset);
    },
  });
}

export const getDashboardAsset = assetCall('/dashboard/:file', (name) => dashboardAssets().own.get(name));
export const getDashboardVendor = assetCall('/dashboard/vendor/:file', (name) => dashboardAssets().vendor.get(name));

/** What the page shows: the stats of the last 5 minutes and the upstreams as they are now. */
export function dashboardSummary(runtime: Runtime) {
  const snapshot = runtime.current;
  return {
    version: snapshot.version,
    ...runtime.dashboardStats.summary(),
    upstreams: [...snapshot.upstreams.values()].map((pool) => ({
      name: pool.name,
      balance: pool.config.balance,
      breaker: pool.breaker?.state ?? null,
      usable: pool.usableCount,
      targets: pool.targets.map((t) => describe(pool, t)),
    })),
  };
}

export const getDashboardStream = defineAdminEndpoint({
  method: 'GET',
  path: '/api/dashboard/stream',
  auth: 'token',
  summary:
    'the dashboard numbers once a second as Server-Sent Events (`event: summary`): per-route rate, error rate, p50/p99 over 5 minutes, upstreams, rate limits, cache, reloads, L4 sessions',
  handle(_req, res, _params, admin) {
    const runtime = runningGateway(admin);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const push = () => {
      if (res.writableLength > MAX_BUFFERED) res.destroy();
      else res.write(`event: summary\ndata: ${JSON.stringify(dashboardSummary(runtime))}\n\n`);
    };
    push();
    const timer = setInterval(push, TICK_MS).unref();
    res.once('close', () => clearInterval(timer));
  },
});

/** The stream reads this process's runtime: a multi-worker primary does not run the proxy (501, as the page says). */
function runningGateway(admin: AdminContext): Runtime {
  const runtime = admin.runtime();
  if (runtime === null)
    throw new TurnpikeError(
      'TP_ADMIN_UNSUPPORTED',
      'this process does not run the proxy (a multi-worker primary, or still starting)',
    );
  return runtime;
}
