// POST /api/cache/purge: {"url": "http://host/path"} removes that URL (every variant) from every cache, memory and
// Redis; {"prefix": "/catalog/"} every URL under that path (on any host, or only `host` when given). A Redis that
// fails answers 503 TP_STORE_UNAVAILABLE (thrown by purgeEverywhere), never a 200 that leaves the entry served.
import { z } from 'zod';
import { readJson, sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runOp } from '../running.ts';

const purgeBody = z.union(
  [
    z.strictObject({
      url: z
        .string()
        .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { message: 'expected http://host/path' }),
    }),
    z.strictObject({
      prefix: z.string().startsWith('/', { message: 'expected a path prefix such as /catalog/' }),
      host: z.string().min(1).optional(),
    }),
  ],
  { error: 'expected {"url": "http://host/path"} or {"prefix": "/catalog/"}' },
);

export const purgeCache = defineAdminEndpoint({
  method: 'POST',
  path: '/api/cache/purge',
  auth: 'token',
  summary: 'removes a URL, or every URL under a path prefix, from the memory and Redis caches',
  body: purgeBody,
  async handle(req, res, _params, admin) {
    const body = await readJson(req, purgeBody);
    const target =
      'url' in body
        ? (() => {
            const u = new URL(body.url);
            return { host: u.host, path: u.pathname, query: u.search, prefix: false };
          })()
        : { ...(body.host !== undefined ? { host: body.host } : {}), path: body.prefix, query: '', prefix: true };
    const result = (await runOp(admin, { op: 'purge', target })) as { purged: number };
    admin.audit(req, 'cache.purge', { ...body, purged: result.purged });
    sendJson(res, 200, result);
  },
});
