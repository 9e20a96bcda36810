// PUT /api/log-level {"level": "warn"}: the gateway log's level until the next reload or restart sets it again.
import { z } from 'zod';
import { readJson, sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runOp } from '../running.ts';

const levelBody = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export const putLogLevel = defineAdminEndpoint({
  method: 'PUT',
  path: '/api/log-level',
  auth: 'token',
  summary: "sets the gateway log's level (fatal, error, warn, info, debug, trace, silent)",
  body: levelBody,
  async handle(req, res, _params, admin) {
    const { level } = await readJson(req, levelBody);
    // The audit line is written before the change, so turning the log down still records who did it.
    admin.audit(req, 'log.level', { from: admin.log.level, to: level });
    const previous = admin.log.level;
    const result = await runOp(admin, { op: 'log-level', level });
    // A multi-worker primary has its own log besides the workers'.
    if (admin.runtime() === null) admin.log.level = level;
    sendJson(res, 200, admin.runtime() === null ? { level, previous } : result);
  },
});
