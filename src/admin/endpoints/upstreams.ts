// GET /api/upstreams (each target's health, weight, in-flight, ejection and drain; the breaker) and
// POST /api/upstreams/{name}/targets/{target}/drain and /undrain. A drained target is held out of rotation in
// the upstream's state, which outlives reloads: it gets no new requests, finishes those in flight, and stays out
// until undrained. A target is named by its host:port.
import { TurnpikeError } from '../../errors.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import type { UpstreamPool } from '../../upstream/pool.ts';
import type { Target } from '../../upstream/target.ts';
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint, type AdminEndpoint } from '../endpoint.ts';
import { runningGateway } from '../running.ts';

/** host:port with the scheme's default port spelled out. */
export function hostPort(target: Target): string {
  const u = target.origin;
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

export function describe(pool: UpstreamPool, t: Target) {
  return {
    target: hostPort(t),
    url: t.url,
    weight: t.weight,
    backup: t.backup,
    healthy: t.healthy,
    inFlight: t.active,
    ejected: pool.outliers?.isEjected(t.key) ?? false,
    drained: pool.state.paused.has(t.key),
    inRotation: pool.state.usableSet.has(t),
  };
}

export const getUpstreams = defineAdminEndpoint({
  method: 'GET',
  path: '/api/upstreams',
  auth: 'token',
  summary: 'each upstream: balancer, breaker state, and its targets with health, weight, in-flight, ejection, drain',
  handle(_req, res, _params, admin) {
    const snapshot = runningGateway(admin).current;
    const upstreams = [...snapshot.upstreams.values()].map((pool) => ({
      name: pool.name,
      balance: pool.config.balance,
      breaker: pool.breaker?.state ?? null,
      usable: pool.usableCount,
      targets: pool.targets.map((t) => describe(pool, t)),
    }));
    sendJson(res, 200, { version: snapshot.version, upstreams });
  },
});

function findTarget(runtime: Runtime, name: string, target: string): { pool: UpstreamPool; t: Target } {
  const pool = runtime.current.upstreams.get(name);
  if (pool === undefined) throw new TurnpikeError('TP_ADMIN_NOT_FOUND', `no upstream "${name}"`);
  const wanted = target.toLowerCase();
  const t = pool.targets.find((x) => hostPort(x) === wanted || x.origin.host === wanted);
  if (t === undefined)
    throw new TurnpikeError('TP_ADMIN_NOT_FOUND', `upstream "${name}" has no target ${target} (name it host:port)`);
  return { pool, t };
}

function drainCall(action: 'drain' | 'undrain'): AdminEndpoint {
  return defineAdminEndpoint({
    method: 'POST',
    path: `/api/upstreams/:name/targets/:target/${action}`,
    auth: 'token',
    summary:
      action === 'drain'
        ? 'takes a target out of rotation (in-flight requests finish); kept across reloads until undrained'
        : 'puts a drained target back in rotation',
    handle(req, res, params, admin) {
      const { pool, t } = findTarget(runningGateway(admin), params.name ?? '', params.target ?? '');
      if (action === 'drain') pool.state.pauseTarget(t.key);
      else pool.state.resumeTarget(t.key);
      admin.audit(req, `upstream.${action}`, { upstream: pool.name, target: hostPort(t) });
      sendJson(res, 200, { upstream: pool.name, ...describe(pool, t) });
    },
  });
}

export const drainTarget = drainCall('drain');
export const undrainTarget = drainCall('undrain');
