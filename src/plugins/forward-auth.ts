// forward-auth: delegates the decision to an authorization service (Envoy's ext_authz, Traefik's forwardAuth).
// The service gets the request's method, URI and client (X-Forwarded-*) and the headers the config lists (the
// body only with includeBody); 2xx lets the request through with `copyHeaders` taken from its answer, anything
// else is relayed to the client as the service said it. Down or slow: 503, or through with onError: allow.
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { duration, headerName, PATTERNS, positiveDuration } from '../config/primitives.ts';
import { problemReply } from '../pipeline/problem.ts';
import { hasRequestBody, readRequestBody, replaceRequestBody } from '../pipeline/request-body.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import { askAuthService, AuthCallFailed, newAuthPool, type AuthCall, type Decision } from './forward-auth-call.ts';
import { parseKeyTemplate, renderKey, type KeyTemplate } from './forward-auth-key.ts';
import { answers, continues } from './explain-support.ts';
import { definePlugin, type PluginExplanation, type RequestHook } from './types.ts';

const schema = z
  .strictObject({
    url: z
      .string()
      .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { message: 'expected an http:// or https:// URL' })
      .meta({
        description: 'the authorization service: asked once per request (or per cacheKey within cacheTtl)',
        examples: ['http://127.0.0.1:9200/authz'],
        pattern: PATTERNS.httpUrl,
      }),
    requestHeaders: z
      .array(headerName)
      .default(['authorization', 'cookie'])
      .meta({ description: 'client headers sent to the service', examples: [['authorization', 'x-api-key']] }),
    copyHeaders: z
      .array(headerName)
      .default([])
      .meta({
        description: "headers of the service's 2xx answer sent upstream (the client's own copies are removed first)",
        examples: [['x-user-id']],
      }),
    includeBody: z.boolean().default(false).meta({
      description: "send the request body too (POST, held whole within the route's maxBodySize: 413 past it)",
    }),
    timeout: positiveDuration
      .prefault('2s')
      .meta({ description: 'a service slower than this is unavailable (503, or onError)', examples: ['1s'] }),
    onError: z
      .enum(['deny', 'allow'])
      .default('deny')
      .meta({ description: 'when the service is down or slow: deny (503) or let the request through' }),
    cacheKey: z
      .string()
      .superRefine((text, ctx) => {
        const parsed = parseKeyTemplate(text);
        if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
      })
      .optional()
      .meta({
        description:
          'cache decisions by this key: {headers.NAME}, {cookie.NAME}, {query.NAME}, {params.NAME}, {method}, {path}, {host}, {client.ip}',
        examples: ['{headers.authorization}'],
      }),
    cacheTtl: duration
      .optional()
      .meta({ description: 'how long a decision is reused (with cacheKey; default 10s)', examples: ['30s'] }),
    cacheEntries: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .meta({ description: 'decisions kept in the cache at most', examples: [50000] }),
  })
  .refine((c) => c.cacheTtl === undefined || c.cacheKey !== undefined, {
    message: 'cacheTtl needs cacheKey (what a decision is reused for)',
    path: ['cacheTtl'],
  });

const DEFAULT_CACHE_TTL = 10_000;
const UNAVAILABLE = 'The authorization service could not be asked';

/** The denial as the client gets it: the service's status, body and the headers it relays. */
function denial(decision: Decision): Reply {
  const headers: Record<string, string | string[]> = { 'cache-control': 'no-store' };
  for (const [name, value] of decision.headers) headers[name] = value;
  return { status: decision.status, headers, body: decision.body, code: 'TP_AUTHZ_DENIED' };
}

export const forwardAuthPlugin = definePlugin({
  name: 'forward-auth',
  phase: 'authorize',
  description:
    'Asks an authorization service about each request: 2xx passes with copyHeaders sent upstream, any other answer goes to the client',
  schema,
  create(config, env) {
    const url = new URL(config.url);
    const path = url.pathname + url.search;
    // One pool per auth origin, kept while a config names it: reloads keep its warm connections.
    const pool = env.keep(`forward-auth:${url.origin}`, () => newAuthPool(url.origin));
    const key: KeyTemplate | null =
      config.cacheKey === undefined ? null : (parseKeyTemplate(config.cacheKey) as KeyTemplate);
    const ttl = config.cacheTtl ?? DEFAULT_CACHE_TTL;
    const cache = key !== null && ttl > 0 ? new LRUCache<string, Decision>({ max: config.cacheEntries, ttl }) : null;
    /** Calls under way by cache key, so a burst with one new key makes one call. */
    const inflight = new Map<string, Promise<Decision>>();
    const { requestHeaders, copyHeaders, timeout } = config;

    function callOf(ctx: RequestContext): AuthCall {
      const src = ctx.req.headers;
      const headers = [
        'x-forwarded-method',
        ctx.req.method ?? 'GET',
        'x-forwarded-uri',
        ctx.path + ctx.query,
        'x-forwarded-for',
        ctx.clientIp,
        'x-forwarded-proto',
        ctx.scheme,
        'x-forwarded-host',
        ctx.host,
        'x-request-id',
        ctx.requestId,
      ];
      for (const name of requestHeaders) {
        const v = src[name];
        if (v === undefined) continue;
        if (typeof v === 'string') headers.push(name, v);
        else for (const one of v) headers.push(name, one);
      }
      return { method: 'GET', headers, body: null };
    }

    function apply(ctx: RequestContext, decision: Decision): Reply | undefined {
      if (!decision.allow) return denial(decision);
      // The client's copies go whether or not the service sent the header: a client cannot claim an identity.
      for (const name of copyHeaders) ctx.removeRequestHeader(name);
      for (const [name, value] of decision.headers) {
        if (typeof value === 'string') ctx.setRequestHeader(name, value);
        else for (const v of value) ctx.setRequestHeader(name, v);
      }
      return undefined;
    }

    function failed(ctx: RequestContext, err: unknown): Reply | undefined {
      if (!(err instanceof AuthCallFailed)) throw err;
      env.logThrottled(`forward-auth:${config.url}`, `authorization service failed: ${err.message}`, {
        route: env.routeName,
        url: config.url,
      });
      if (config.onError === 'allow') {
        // Through, but never with identity headers the client wrote itself.
        for (const name of copyHeaders) ctx.removeRequestHeader(name);
        return undefined;
      }
      return problemReply('TP_AUTHZ_UNAVAILABLE', UNAVAILABLE, ctx.requestId);
    }

    async function ask(ctx: RequestContext, call: AuthCall, cacheKey: string | undefined): Promise<Reply | undefined> {
      let pending = cacheKey === undefined ? undefined : inflight.get(cacheKey);
      if (pending === undefined) {
        pending = askAuthService(pool, path, call, timeout, copyHeaders);
        if (cacheKey !== undefined) {
          inflight.set(cacheKey, pending);
          pending.then(
            (d) => {
              inflight.delete(cacheKey);
              cache!.set(cacheKey, d);
            },
            () => inflight.delete(cacheKey),
          );
        }
      }
      try {
        return apply(ctx, await pending);
      } catch (err) {
        return failed(ctx, err);
      }
    }

    const request: RequestHook = (ctx) => {
      const cacheKey = cache === null ? undefined : renderKey(key!, ctx);
      if (cacheKey !== undefined) {
        const cached = cache!.get(cacheKey);
        if (cached !== undefined) return apply(ctx, cached);
      }
      const call = callOf(ctx);
      if (!config.includeBody || !hasRequestBody(ctx)) return ask(ctx, call, cacheKey);
      const withBody = (body: Buffer | Reply): Reply | Promise<Reply | undefined> | undefined => {
        if (!Buffer.isBuffer(body)) return body;
        // The upstream gets the same bytes the service judged.
        replaceRequestBody(ctx, body, null);
        const type = ctx.req.headers['content-type'];
        const headers = type === undefined ? call.headers : [...call.headers, 'content-type', type];
        return ask(ctx, { method: 'POST', headers, body }, cacheKey);
      };
      const body = readRequestBody(ctx, env.maxBodySize);
      return Buffer.isBuffer(body) ? withBody(body) : body.then(withBody);
    };

    // Says what it would do without asking the service (the call could count, log or change its state).
    const explain = (ctx: RequestContext): PluginExplanation => {
      const details = { url: config.url, requestHeaders, copyHeaders, includeBody: config.includeBody };
      const cached = cache === null ? undefined : cache.peek(renderKey(key!, ctx));
      if (cached === undefined)
        return continues(`would ask ${config.url} (not asked by explain); 2xx passes, any other status is relayed`, {
          ...details,
          cached: false,
        });
      if (cached.allow)
        return continues(`allowed by a cached decision (${cached.status})`, { ...details, cached: true });
      return answers(denial(cached), 'refused by a cached decision', { ...details, cached: true });
    };
    return { request, explain };
  },
});
