// The read-only views of the running gateway: GET /api/config (secrets redacted, with its version), GET
// /api/routes, GET /api/certificates (each served certificate's names and expiry).
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint, type AdminEndpoint } from '../endpoint.ts';
import { runOp } from '../running.ts';

function view(path: string, op: 'config' | 'routes' | 'certificates', summary: string): AdminEndpoint {
  return defineAdminEndpoint({
    method: 'GET',
    path,
    auth: 'token',
    summary,
    async handle(_req, res, _params, admin) {
      sendJson(res, 200, await runOp(admin, { op }));
    },
  });
}

export const getConfig = view(
  '/api/config',
  'config',
  'the running config with every secret replaced by "[redacted]", and its version',
);
export const getRoutes = view(
  '/api/routes',
  'routes',
  'the running routes: name, match, terminal (upstream, respond, redirect) and plugin names',
);
export const getCertificates = view(
  '/api/certificates',
  'certificates',
  'each served certificate: listener, file, names, issuer, expiry and days left',
);
