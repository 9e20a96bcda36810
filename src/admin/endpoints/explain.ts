// POST /api/explain: what the running gateway would do with one request (src/explain/): listener, route and why
// the others do not match, each plugin's decision, terminal, upstream and target. Nothing is sent upstream and no
// rate-limit allowance or cache entry is consumed. With workers, one worker is asked.
import { z } from 'zod';
import { readJson, sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runOpOnOne } from '../running.ts';

const body = z.strictObject({
  method: z.string().min(1),
  url: z
    .string()
    .min(1)
    .meta({ description: 'absolute http:// or https:// URL; its scheme and port pick the listener' }),
  headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
  listener: z.string().min(1).optional().meta({ description: 'a listener by name, instead of the one the URL picks' }),
  clientIp: z.string().min(1).optional().meta({ description: 'the address the request comes from (127.0.0.1)' }),
});

export const postExplain = defineAdminEndpoint({
  method: 'POST',
  path: '/api/explain',
  auth: 'token',
  summary:
    'what the gateway would do with a request {method, url, headers}: route, plugin decisions, terminal, target; sends nothing upstream',
  body,
  async handle(req, res, _params, admin) {
    const { method, url, headers, listener, clientIp } = await readJson(req, body);
    const answer = (await runOpOnOne(admin, {
      op: 'explain',
      request: { method, url, headers, ...(listener ? { listener } : {}), ...(clientIp ? { clientIp } : {}) },
    })) as { notes: string[] };
    if (admin.workers !== null)
      answer.notes.push('asked of one worker: each has its own balancer rotation and memory cache');
    sendJson(res, 200, answer);
  },
});
