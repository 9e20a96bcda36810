// The live dashboard: GET / (the page, no token: it asks for one and sends it as Bearer on every API call),
// GET /dashboard/:file and /dashboard/vendor/:file (its scripts and styles, no token: they hold no data), and
// GET /api/dashboard/stream (token): a summary once a second as Server-Sent Events. The page reads the stream
// with fetch() so the token travels in the Authorization header (EventSource cannot send one, and a token in a
// URL ends up in logs and history). With workers the primary asks every worker for its raw counts each tick and
// pushes their merge (merge-ops.ts, dashboard-summary.ts); a single process summarises its own through the same code.
import type { ServerResponse } from 'node:http';
import { TurnpikeError } from '../../errors.ts';
import { dashboardAssets, type Asset } from '../dashboard-assets.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runAdminOp, type DashboardAnswer } from '../admin-ops.ts';
import type { AdminContext } from '../endpoint.ts';
import { mergeDashboard } from '../merge-ops.ts';

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

/** How long a tick waits for a worker: one that is stuck is left out of that summary (the page says so). */
const WORKER_WAIT_MS = 2000;
const DASHBOARD_OP = { op: 'dashboard' } as const;

/** Reads one summary: this process's, or the merge of every worker's (null when no worker answered in time). */
function dashboardSource(admin: AdminContext): () => Promise<object | null> {
  const runtime = admin.runtime();
  if (runtime !== null)
    return async () => mergeDashboard([runAdminOp(runtime, admin.log, DASHBOARD_OP) as DashboardAnswer], null);
  const workers = admin.workers;
  if (workers !== null)
    return async () => {
      const { answers, asked } = await workers.some(DASHBOARD_OP, WORKER_WAIT_MS);
      if (answers.length === 0) return null;
      return mergeDashboard(answers as DashboardAnswer[], { asked, answered: answers.length });
    };
  throw new TurnpikeError('TP_ADMIN_NOT_READY', 'the gateway is still starting');
}

export const getDashboardStream = defineAdminEndpoint({
  method: 'GET',
  path: '/api/dashboard/stream',
  auth: 'token',
  summary:
    'the dashboard numbers once a second as Server-Sent Events (`event: summary`): per-route rate, error rate, p50/p99 over 5 minutes, upstreams, rate limits, cache, reloads, L4 sessions (with workers: summed over the workers)',
  stream: true,
  handle(_req, res, _params, admin) {
    const read = dashboardSource(admin);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    // The next tick is scheduled when this one has its answer, so ticks never overlap (a slow worker delays them).
    const tick = async () => {
      const started = performance.now();
      let summary: object | null = null;
      try {
        summary = await read();
      } catch (err) {
        admin.log.warn({ err }, 'dashboard summary failed');
      }
      // Closed, or ended by the listener (a reload moved it): nothing more is written.
      if (closed || res.writableEnded) return;
      if (res.writableLength > MAX_BUFFERED) {
        res.destroy();
        return;
      }
      if (summary !== null) res.write(`event: summary\ndata: ${JSON.stringify(summary)}\n\n`);
      timer = setTimeout(tick, Math.max(0, TICK_MS - (performance.now() - started))).unref();
    };
    res.once('close', () => {
      closed = true;
      clearTimeout(timer);
    });
    void tick();
  },
});
