// PUT /api/discovery/redis/{service} {"url", "ttl", "weight"?} registers one instance of a service in stores.redis
// for `discover: { redis: { service } }` (once: the caller renews it before its TTL ends, as `turnpike register`
// does); DELETE /api/discovery/redis/{service}?url=... removes it. One write to the shared Redis, made by this
// process or, with workers, by one of them (they share the Redis).
import { z } from 'zod';
import { redisServiceName } from '../../config/discovery-schema.ts';
import { duration } from '../../config/primitives.ts';
import { TurnpikeError } from '../../errors.ts';
import { MAX_TTL_MS, MIN_TTL_MS, registrationUrlProblem } from '../../discovery/redis-keys.ts';
import { readJson, sendJson } from '../admin-http.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runOpOnOne } from '../running.ts';

const origin = z.string().superRefine((u, ctx) => {
  const problem = registrationUrlProblem(u);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const registerBody = z.strictObject({
  url: origin.meta({ description: 'where the instance serves', examples: ['http://10.0.0.5:8080'] }),
  ttl: duration
    .refine((ms) => ms >= MIN_TTL_MS && ms <= MAX_TTL_MS, { message: 'expected a duration from 1s to 1d, such as 10s' })
    .meta({ description: 'how long the registration lives unless renewed (PUT again)', examples: ['10s'] }),
  weight: z.int().min(1).max(1000).optional().meta({ description: 'the balancing weight (1 by default)' }),
});

function service(name: string | undefined): string {
  if (!redisServiceName.safeParse(name).success)
    throw new TurnpikeError('TP_BAD_REQUEST', `"${name}": expected a service name such as ledger`);
  return name!;
}

export const putRedisRegistration = defineAdminEndpoint({
  method: 'PUT',
  path: '/api/discovery/redis/:service',
  auth: 'token',
  summary: 'registers a service instance in stores.redis with a TTL (renew it by calling again before it ends)',
  body: registerBody,
  async handle(req, res, params, admin) {
    const name = service(params.service);
    const body = await readJson(req, registerBody);
    const url = new URL(body.url).origin;
    const op = {
      op: 'discovery-redis',
      service: name,
      url,
      ttlMs: body.ttl,
      ...(body.weight !== undefined ? { weight: body.weight } : {}),
    } as const;
    const answer = await runOpOnOne(admin, op);
    admin.audit(req, 'discovery.redis.register', { service: name, url, ttlMs: body.ttl });
    sendJson(res, 200, answer);
  },
});

export const deleteRedisRegistration = defineAdminEndpoint({
  method: 'DELETE',
  path: '/api/discovery/redis/:service',
  auth: 'token',
  summary: 'removes a service instance (?url=) from stores.redis',
  query: ['url'],
  async handle(req, res, params, admin) {
    const name = service(params.service);
    const raw = new URL(req.url ?? '/', 'http://admin').searchParams.get('url') ?? '';
    const problem = registrationUrlProblem(raw);
    if (problem !== undefined) throw new TurnpikeError('TP_BAD_REQUEST', `url: ${problem}`);
    const url = new URL(raw).origin;
    const answer = await runOpOnOne(admin, { op: 'discovery-redis', service: name, url });
    admin.audit(req, 'discovery.redis.deregister', { service: name, url });
    sendJson(res, 200, answer);
  },
});
