// GET /healthz (the process answers) and GET /readyz (config loaded, every listener bound, not draining): the
// Kubernetes liveness and readiness probes, without a token.
import { sendJson, sendProblem } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

export const healthz = defineAdminEndpoint({
  method: 'GET',
  path: '/healthz',
  auth: 'none',
  summary: 'liveness: 200 while the process answers',
  handle(_req, res) {
    sendJson(res, 200, { status: 'ok' });
  },
});

export const readyz = defineAdminEndpoint({
  method: 'GET',
  path: '/readyz',
  auth: 'none',
  summary: 'readiness: 200 once the config is loaded and every listener bound; 503 while starting or draining',
  handle(_req, res, _params, admin) {
    if (admin.ready()) sendJson(res, 200, { status: 'ready' });
    else sendProblem(res, 'TP_ADMIN_NOT_READY', admin.runtime()?.stopRequested ? 'draining' : 'starting');
  },
});
