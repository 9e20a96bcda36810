// POST /api/reload: reloads the config file as SIGHUP does; a bad config is refused and the running one stays.
import { TurnpikeError } from '../../errors.ts';
import { sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

export const reload = defineAdminEndpoint({
  method: 'POST',
  path: '/api/reload',
  auth: 'token',
  summary: 'reloads the config file; 200 {ok: true, version} or 200 {ok: false, error} (the running config stays)',
  async handle(req, res, _params, admin) {
    if (admin.reload === null)
      throw new TurnpikeError('TP_ADMIN_UNSUPPORTED', 'this gateway was not started from a config file');
    const result = await admin.reload();
    admin.audit(req, 'config.reload', { ok: result.ok, ...(result.error ? { error: result.error } : {}) });
    sendJson(res, 200, {
      ok: result.ok,
      version: admin.runtime()?.current.version ?? null,
      ...(result.error !== undefined ? { error: result.error } : {}),
    });
  },
});
