// cache: an RFC 9111 shared cache in front of the route's upstream (store: memory, bounded LRU per route, or
// redis, shared by instances). Runs last among the request phases, after authentication and limits, so a hit
// is served only to requests the route would have let through.
import { z } from 'zod';
import { DEFAULT_KEY, compileCacheKey, type KeyPart } from '../cache/cache-key.ts';
import { explainCache } from '../cache/explain-cache.ts';
import { policyClass } from '../cache/freshness.ts';
import { FillLocks } from '../cache/locks.ts';
import { MemoryCacheStore } from '../cache/memory-store.ts';
import { RedisCacheStore } from '../cache/redis-store.ts';
import { ResponseCache } from '../cache/response-cache.ts';
import type { CacheStore } from '../cache/store.ts';
import { cidr, duration, headerName, size } from '../config/primitives.ts';
import type { CheckProblem } from '../config/problems.ts';
import { CidrList } from '../http/cidr.ts';
import { definePlugin } from './types.ts';

const keyPart = z
  .union([
    z.enum(['method', 'host', 'path', 'query', 'consumer']),
    // A-Z spelled out: the JSON Schema's pattern drops the i flag, and cookie names are case-sensitive.
    z.string().regex(/^(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+$/i, {
      message: 'expected method, host, path, query, consumer, header:NAME or cookie:NAME',
    }),
  ])
  .meta({ examples: ['cookie:lang'] });

const schema = z.strictObject({
  store: z
    .enum(['memory', 'redis'])
    .default('memory')
    .meta({
      description: 'memory: per worker; redis: shared by every instance (stores.redis)',
      examples: ['redis'],
    }),
  maxSize: size
    .prefault('256mb')
    .meta({ description: "memory store: bytes held by the route's cache (LRU beyond)", examples: ['1gb'] }),
  maxObjectSize: size
    .prefault('8mb')
    .meta({ description: 'larger responses pass through and are not stored', examples: ['1mb'] }),
  defaultTtl: duration.optional().meta({
    description:
      'freshness of responses that state none (no max-age, s-maxage or Expires); never stores what the RFC refuses (Authorization without public, s-maxage or must-revalidate; Set-Cookie; private; no-store; no-cache)',
    examples: ['5m'],
  }),
  staleWhileRevalidate: duration.optional().meta({
    description: 'when the response states none: serve stale this long while one refresh runs',
    examples: ['30s'],
  }),
  staleIfError: duration.optional().meta({
    description: 'when the response states none: serve stale this long when the upstream fails',
    examples: ['1h'],
  }),
  key: z
    .array(keyPart)
    .min(1)
    .default([...DEFAULT_KEY])
    .meta({
      description:
        "method, host, path, query, consumer, header:NAME, cookie:NAME (the cookie's value, by its exact name, keys the variant)",
      examples: [['host', 'path', 'query']],
    }),
  ignoreCookies: z
    .array(
      z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'expected a cookie name (* matches any characters)' }),
    )
    .default([])
    .meta({
      description:
        'cookies that do not change the answer (* matches any characters); a request with a cookie neither here nor in key (cookie:NAME) bypasses the cache',
      examples: [['_ga*', 'consent']],
    }),
  retainStale: duration.prefault('10m').meta({
    description: 'keep a stale response that has a validator this long, to refresh it with a 304',
    examples: ['1h'],
  }),
  lockTimeout: duration
    .prefault('5s')
    .meta({ description: 'how long concurrent misses wait for the one request filling the cache', examples: ['2s'] }),
  storeSetCookie: z
    .boolean()
    .default(false)
    .meta({ description: 'store responses carrying Set-Cookie (replayed to every client)' }),
  storeAuthorized: z.boolean().default(false).meta({
    description:
      'store answers to requests with Authorization when the response allows a shared cache to (public, s-maxage or must-revalidate: RFC 9111 3.5); off by default, as in Varnish: a backend that marks a private page public by mistake would have it replayed to everyone',
  }),
  statusHeader: z
    .union([headerName, z.literal(false)])
    .default('X-Cache')
    .meta({
      description: 'the response header that says HIT, MISS, STALE...; false: none',
      examples: ['X-Cache-Status'],
    }),
  purge: z
    .strictObject({
      allow: z
        .array(cidr)
        .default([])
        .meta({ description: 'client addresses allowed to PURGE', examples: [['127.0.0.1/32', '10.0.0.0/8']] }),
      consumers: z
        .array(z.string().min(1))
        .default([])
        .meta({ description: 'consumers allowed to PURGE (identified by the route)', examples: [['ops']] }),
    })
    .optional()
    .meta({ description: 'who may send PURGE to this route (others get 403)' }),
});

const seconds = (ms: number | undefined): number => (ms === undefined ? 0 : Math.ceil(ms / 1000));

export const cachePlugin = definePlugin({
  name: 'cache',
  phase: 'cache',
  description:
    'Caches upstream responses (RFC 9111): memory or Redis store, Vary, revalidation, stale-while-revalidate/-if-error, collapsing, PURGE',
  schema,
  check(config, env) {
    const problems: CheckProblem[] = [];
    if (config.store === 'redis' && !env.redisConfigured) {
      problems.push({
        path: ['store'],
        code: 'TP_CONFIG_BAD_REFERENCE',
        message:
          'redis needs the top-level stores.redis, which is not configured: add stores: { redis: { url: redis://HOST:PORT } }',
      });
    }
    config.purge?.consumers.forEach((name, i) => {
      if (!env.consumerNames.has(name)) {
        problems.push({
          path: ['purge', 'consumers', i],
          code: 'TP_CONFIG_BAD_REFERENCE',
          message: `names consumer "${name}", which is not defined under consumers`,
        });
      }
    });
    return problems;
  },
  create(config, env) {
    const onError = (message: string, err: unknown): void =>
      env.logThrottled(`cache:${message}`, message, {
        route: env.routeName,
        error: err instanceof Error ? err.message : String(err),
      });
    const namespace = env.routeName;
    if (config.store === 'redis' && env.redis() === undefined) {
      throw new Error(
        'cache uses store: redis, but no Redis is configured: add stores: { redis: { url: redis://HOST:PORT } } at the top level',
      );
    }
    const Policy = policyClass(env.clock);
    let store: CacheStore;
    if (config.store === 'redis') {
      const redisStore = new RedisCacheStore(env.redis, {
        namespace,
        onError: (err) => onError('redis cache store error', err),
        Policy,
      });
      // The admin API's purge reaches Redis through the current config: one visit per namespace.
      env.sharedCaches.set(redisStore.place, redisStore);
      store = redisStore;
    } else {
      store = env.keep(`cache:${namespace}:${config.maxSize}`, () => new MemoryCacheStore(config.maxSize, env.clock));
      // A memory store is one per worker: purges go through the instance's fan-out; Redis is one for all.
      env.cachePurges.register(namespace, store);
    }
    const purge =
      config.store === 'memory'
        ? (key: string, prefix: boolean) => env.cachePurges.purge(namespace, key, prefix)
        : (key: string, prefix: boolean) => (prefix ? store.purgePrefix(key) : store.purge(key));
    const cache = new ResponseCache({
      store,
      purge,
      key: compileCacheKey(config.key as KeyPart[], config.ignoreCookies),
      locks: env.keep(`cache-locks:${namespace}`, () => new FillLocks()),
      defaults: {
        defaultTtl: seconds(config.defaultTtl),
        staleWhileRevalidate: seconds(config.staleWhileRevalidate),
        staleIfError: seconds(config.staleIfError),
        storeSetCookie: config.storeSetCookie,
        storeAuthorized: config.storeAuthorized,
      },
      Policy,
      maxObjectSize: config.maxObjectSize,
      lockTimeout: config.lockTimeout,
      retainStale: config.retainStale,
      statusHeader: config.statusHeader === false ? null : config.statusHeader.toLowerCase(),
      purgeFrom: config.purge !== undefined && config.purge.allow.length > 0 ? new CidrList(config.purge.allow) : null,
      purgeConsumers: new Set(config.purge?.consumers ?? []),
      onError,
    });
    return {
      request: (ctx) => cache.request(ctx),
      response: (ctx, head) => cache.response(ctx, head),
      explain: (ctx) => explainCache(cache, ctx),
    };
  },
});
