// rate-limit: GCRA limits per consumer, IP, route, header or claim, counted in memory (instance-wide) or in Redis
// (shared by every instance). Answers 429 with Retry-After, and tells clients their quota on every response.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { duration } from '../config/primitives.ts';
import { appendListMember } from '../http/header-list.ts';
import { RedisRateStore } from '../limits/redis-rate-store.ts';
import type { LimitSpec, RateDecision, RateStore } from '../limits/shared-store.ts';
import { problemReply } from '../pipeline/problem.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import { CHANNELS, publishRequest } from '../observability/events.ts';
import { continues } from './explain-support.ts';
import { definePlugin, type PluginExplanation } from './types.ts';

const limit = z
  .strictObject({
    requests: z
      .int()
      .positive()
      .meta({ description: 'requests allowed per period', examples: [100] }),
    per: duration.meta({ description: 'the period', examples: ['1m'] }),
  })
  .refine((l) => l.per >= 1 && (l.per * 1000) / l.requests >= 1, {
    message: 'a limit needs per ≥ 1ms and at most one request per microsecond',
  })
  .meta({ examples: [{ requests: 100, per: '1m' }] });

type KeySpec =
  { readonly kind: 'consumer' | 'ip' | 'route' } | { readonly kind: 'header' | 'claim'; readonly name: string };

const KEY = /^(consumer|ip|route|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|claim:.+)$/;
const keySpec = z
  .string()
  .regex(KEY, { message: 'expected consumer, ip, route, header:NAME or claim:NAME' })
  .transform((s): KeySpec => {
    const colon = s.indexOf(':');
    if (colon === -1) return { kind: s as 'consumer' | 'ip' | 'route' };
    const kind = s.slice(0, colon) as 'header' | 'claim';
    const name = s.slice(colon + 1);
    return { kind, name: kind === 'header' ? name.toLowerCase() : name };
  });

const schema = z.strictObject({
  limits: z
    .array(limit)
    .min(1)
    .meta({ description: 'requests per period; all must pass (a refused request counts in none)' }),
  key: keySpec.prefault('consumer').meta({
    description: 'consumer (falls back to the client IP), ip, route, header:NAME, claim:NAME',
    examples: ['header:x-tenant'],
  }),
  store: z
    .enum(['memory', 'redis'])
    .default('memory')
    .meta({
      description: 'memory: instance-wide counters; redis: shared by every instance (stores.redis)',
      examples: ['redis'],
    }),
  onStoreError: z
    .enum(['allow', 'deny'])
    .default('allow')
    .meta({
      description: 'when the store fails: let requests through (allow) or answer 503 (deny)',
      examples: ['deny'],
    }),
  scope: z
    .enum(['route', 'global'])
    .default('route')
    .meta({
      description: 'route: each route counts apart; global: routes with the same limits and key share counters',
      examples: ['global'],
    }),
});

/** Key values longer than this are hashed, so a long header cannot make huge store keys. */
const MAX_KEY_VALUE = 200;

function keyValue(spec: KeySpec, ctx: RequestContext): string {
  switch (spec.kind) {
    case 'ip':
      return `ip:${ctx.clientIp}`;
    case 'route':
      return 'route';
    case 'consumer': {
      const identity = ctx.identity;
      if (identity === null) return `ip:${ctx.clientIp}`;
      // Authenticated but mapped to no configured consumer (a JWT subject): count by subject.
      return identity.consumer !== null ? `c:${identity.consumer.name}` : `s:${identity.method}:${identity.subject}`;
    }
    case 'header': {
      const value = ctx.req.headers[spec.name];
      if (value === undefined) return `ip:${ctx.clientIp}`;
      return `h:${bounded(Array.isArray(value) ? value.join(',') : value)}`;
    }
    case 'claim': {
      const value = ctx.identity?.claims[spec.name];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        return `cl:${bounded(String(value))}`;
      return `ip:${ctx.clientIp}`;
    }
  }
}

function bounded(value: string): string {
  return value.length <= MAX_KEY_VALUE ? value : `#${createHash('sha256').update(value).digest('base64url')}`;
}

/** `60000` → `1m`, `86400000` → `1d`, `1500` → `1500ms`: policy names for the RateLimit fields. */
function periodName(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export const rateLimitPlugin = definePlugin({
  name: 'rate-limit',
  phase: 'limit',
  description:
    'GCRA rate limits (requests per period, several at once) per consumer, ip, route, header:NAME or claim:NAME; memory or redis store',
  schema,
  check(config, env) {
    return config.store === 'redis' && !env.redisConfigured
      ? [
          {
            path: ['store'],
            code: 'TP_CONFIG_BAD_REFERENCE',
            message:
              'redis needs the top-level stores.redis, which is not configured: add stores: { redis: { url: redis://HOST:PORT } }',
          },
        ]
      : [];
  },
  create(config, env) {
    const limits: readonly LimitSpec[] = config.limits.map((l) => ({ requests: l.requests, per: l.per }));
    let store: RateStore;
    if (config.store === 'redis') {
      const redis = env.redis();
      if (redis === undefined) {
        throw new Error(
          'rate-limit uses store: redis, but no Redis is configured: add stores: { redis: { url: redis://HOST:PORT } } at the top level',
        );
      }
      store = new RedisRateStore(redis);
    } else {
      store = env.memoryRates;
    }
    const key = config.key;
    const keyName = key.kind === 'header' || key.kind === 'claim' ? `${key.kind}:${key.name}` : key.kind;
    // Counters are namespaced by route (unless scope: global), limits and key, so a route never shares counters
    // with another route, nor with a plugin counting other limits or by another key.
    const namespace = `${limits.map((l) => `${l.requests}/${l.per}`).join('+')}|${keyName}|`;
    const global = config.scope === 'global';

    // Names of the policies: the period ("1m", "1d"), made unique on this plugin.
    const names: string[] = [];
    for (const l of limits) {
      const base = periodName(l.per);
      let name = base;
      for (let n = 2; names.includes(name); n++) name = `${base}-${n}`;
      names.push(name);
    }
    // RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11 (May 2026; the same syntax as -09 and -10):
    //   RateLimit-Policy: "1m";q=100;w=60          (q = quota, w = window in whole seconds)
    //   RateLimit: "1m";r=42;t=1                   (r = available quota, t = seconds until more quota is free)
    const policyField = limits
      .map((l, i) => `"${names[i]}";q=${l.requests};w=${Math.max(1, Math.ceil(l.per / 1000))}`)
      .join(', ');
    const rateField = (d: RateDecision): string =>
      names.map((name, i) => `"${name}";r=${d.remaining[i]};t=${Math.ceil(d.resetMs[i]! / 1000)}`).join(', ');

    const storeName = config.store;
    // This plugin's own slot in the request's decisions (a route may carry several rate-limit plugins).
    const decisionKey = Symbol('rate-limit');
    const allowOnError = config.onStoreError === 'allow';

    const decided = (ctx: RequestContext, d: RateDecision): Reply | undefined => {
      (ctx.rateDecisions ??= new Map()).set(decisionKey, d);
      if (CHANNELS.rateLimit.hasSubscribers)
        publishRequest(CHANNELS.rateLimit, ctx, { plugin: 'rate-limit', allowed: d.allowed, remaining: d.remaining });
      if (d.allowed) return undefined;
      ctx.errorCode = 'TP_RATE_LIMITED';
      const retryAfter = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
      return problemReply('TP_RATE_LIMITED', `retry in ${retryAfter} s`, ctx.requestId, { 'retry-after': retryAfter });
    };
    const failed = (ctx: RequestContext, err: unknown): Reply | undefined => {
      // Metrics count store failures from the stream: the decision the onStoreError mode made, and why.
      if (CHANNELS.rateLimit.hasSubscribers) {
        publishRequest(CHANNELS.rateLimit, ctx, {
          plugin: 'rate-limit',
          allowed: allowOnError,
          storeError: err instanceof Error ? err.message : String(err),
        });
      }
      env.logThrottled(
        `rate-limit:${storeName}`,
        `rate-limit store unavailable; ${allowOnError ? 'letting requests through (onStoreError: allow)' : 'answering 503 (onStoreError: deny)'}`,
        { store: storeName, route: ctx.routeName, error: err instanceof Error ? err.message : String(err) },
      );
      if (allowOnError) return undefined;
      ctx.errorCode = 'TP_STORE_UNAVAILABLE';
      return problemReply('TP_STORE_UNAVAILABLE', 'the rate-limit store is unavailable', ctx.requestId, {
        'retry-after': '1',
      });
    };

    const explained = (ctx: RequestContext, d: RateDecision): PluginExplanation => {
      const per = names.map((name, i) => `${d.remaining[i]}/${limits[i]!.requests} left per ${name}`).join(', ');
      const details = {
        // A header's value may be a credential (x-api-key): named, not shown.
        key: ((v) => (v.startsWith('h:') ? `header ${keyName.slice(7)}` : v))(keyValue(key, ctx)),
        store: storeName,
        allowed: d.allowed,
        limits: limits.map((l, i) => ({ ...l, name: names[i], remaining: d.remaining[i], resetMs: d.resetMs[i] })),
      };
      if (d.allowed) return continues(`allowed for ${details.key}: ${per} (read, not counted)`, details);
      const retryAfter = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
      return {
        decision: 'answer',
        status: 429,
        code: 'TP_RATE_LIMITED',
        summary: `limited for ${details.key}: ${per}; 429 TP_RATE_LIMITED, retry in ${retryAfter} s`,
        details: { ...details, retryAfterMs: d.retryAfterMs },
      };
    };

    return {
      async explain(ctx) {
        const storeKey = (global ? '*|' : `${ctx.routeName}|`) + namespace + keyValue(key, ctx);
        try {
          return explained(ctx, await store.peek(storeKey, limits));
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          return allowOnError
            ? continues(`the ${storeName} store is unavailable (${why}): let through (onStoreError: allow)`)
            : {
                decision: 'answer',
                status: 503,
                code: 'TP_STORE_UNAVAILABLE',
                summary: `the ${storeName} store is unavailable (${why}): 503 TP_STORE_UNAVAILABLE (onStoreError: deny)`,
              };
        }
      },
      request(ctx) {
        const storeKey = (global ? '*|' : `${ctx.routeName}|`) + namespace + keyValue(key, ctx);
        let result: RateDecision | Promise<RateDecision>;
        try {
          result = store.consume(storeKey, limits);
        } catch (err) {
          return failed(ctx, err);
        }
        if (result instanceof Promise)
          return result.then(
            (d) => decided(ctx, d),
            (err: unknown) => failed(ctx, err),
          );
        return decided(ctx, result);
      },
      response(ctx, head) {
        // Both fields are Structured Field lists: several plugins (or the upstream) add members to one list.
        appendListMember(head.headers, 'ratelimit-policy', policyField);
        const d = ctx.rateDecisions?.get(decisionKey);
        if (d !== undefined) appendListMember(head.headers, 'ratelimit', rateField(d));
      },
    };
  },
});
