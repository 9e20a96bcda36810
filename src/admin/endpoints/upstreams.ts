// GET /api/upstreams (each target's health, weight, in-flight, ejection and drain; the breaker) and
// POST /api/upstreams/{name}/targets/{target}/drain and /undrain. A drained target is held out of rotation in
// the upstream's state, which outlives reloads: it gets no new requests, finishes those in flight, and stays out
// until undrained. A target is named by its host:port.
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint, type AdminEndpoint } from '../endpoint.ts';
import { runOp } from '../running.ts';

export const getUpstreams = defineAdminEndpoint({
  method: 'GET',
  path: '/api/upstreams',
  auth: 'token',
  summary: 'each upstream: balancer, breaker state, and its targets with health, weight, in-flight, ejection, drain',
  async handle(_req, res, _params, admin) {
    sendJson(res, 200, await runOp(admin, { op: 'upstreams' }));
  },
});

function drainCall(action: 'drain' | 'undrain'): AdminEndpoint {
  return defineAdminEndpoint({
    method: 'POST',
    path: `/api/upstreams/:name/targets/:target/${action}`,
    auth: 'token',
    summary:
      action === 'drain'
        ? 'takes a target out of rotation (in-flight requests finish); kept across reloads until undrained'
        : 'puts a drained target back in rotation',
    async handle(req, res, params, admin) {
      const upstream = params.name ?? '';
      const target = params.target ?? '';
      const view = await runOp(admin, { op: 'drain', upstream, target, drained: action === 'drain' });
      admin.audit(req, `upstream.${action}`, { upstream, target });
      sendJson(res, 200, view);
    },
  });
}

export const drainTarget = drainCall('drain');
export const undrainTarget = drainCall('undrain');
