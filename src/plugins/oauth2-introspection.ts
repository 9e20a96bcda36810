// oauth2-introspection: accepts a Bearer token when the authorization server's introspection endpoint (RFC 7662)
// says it is active. Answers are cached by the token's SHA-256 (never the token itself): positive ones until
// min(cacheTtl, exp), negative ones briefly, so a valid client costs one introspection per cacheTtl.
import { z } from 'zod';
import { duration, PATTERNS } from '../config/primitives.ts';
import { secret } from '../config/secret.ts';
import { scopesOf, type Identity } from '../auth/identity.ts';
import { TokenCache, tokenDigest } from '../auth/introspection-cache.ts';
import { readCapped } from '../auth/jwks.ts';
import { problemReply } from '../pipeline/problem.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import { explainAuthentication } from './explain-support.ts';
import { definePlugin, type PluginEnv, type RequestHook } from './types.ts';

const schema = z.strictObject({
  url: z
    .string()
    .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { message: 'expected an http:// or https:// URL' })
    .meta({
      description: 'the introspection endpoint (RFC 7662) of the authorization server',
      examples: ['https://idp.example.com/oauth2/introspect'],
      pattern: PATTERNS.httpUrl,
    }),
  clientId: z
    .string()
    .min(1)
    .meta({ description: 'the client id the gateway authenticates with (Basic)', examples: ['turnpike'] }),
  clientSecret: secret(z.string().min(1)).meta({
    description: 'the client secret that goes with clientId',
    examples: ['${INTROSPECTION_SECRET}'],
  }),
  cacheTtl: duration.prefault('30s').meta({
    description: 'how long an active answer is reused (never past the token exp); 0 disables',
    examples: ['1m'],
  }),
  timeout: duration
    .prefault('2s')
    .meta({ description: 'an endpoint slower than this is unavailable (503)', examples: ['1s'] }),
  tokenTypeHint: z
    .string()
    .min(1)
    .default('access_token')
    .meta({ description: 'the token_type_hint sent with each token', examples: ['refresh_token'] }),
  hideCredentials: z
    .boolean()
    .default(false)
    .meta({ description: 'remove Authorization before the request goes upstream' }),
  cacheEntries: z
    .number()
    .int()
    .min(1)
    .default(10_000)
    .meta({ description: 'answers kept in the cache at most', examples: [50000] }),
});

/** Inactive answers are reused at most this long (a token may become active only by being a new token). */
const NEGATIVE_TTL_MS = 5_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

const REALM = 'Bearer realm="turnpike"';
const INACTIVE = `${REALM}, error="invalid_token", error_description="The access token is invalid or has expired"`;

/** What the endpoint said: an identity, or `null` for an inactive token. */
type Verdict = Identity | null;

class IntrospectionFailed extends Error {}

/** RFC 6749 §2.3.1: client id and secret are form-encoded before the Basic encoding. */
function basicAuth(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

function bearerToken(ctx: RequestContext): string | undefined {
  const value = ctx.req.headers.authorization;
  if (value === undefined) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1] : undefined;
}

function identityOf(response: Record<string, unknown>, env: PluginEnv): Identity {
  const subject =
    [response.sub, response.username, response.client_id].find((v): v is string => typeof v === 'string' && v !== '') ??
    '';
  return Object.freeze({
    method: 'oauth2-introspection' as const,
    consumer: subject !== '' ? (env.consumers.byJwtSubject(subject) ?? null) : null,
    subject,
    claims: Object.freeze(response),
    scopes: scopesOf(response),
  });
}

export const oauth2IntrospectionPlugin = definePlugin({
  name: 'oauth2-introspection',
  phase: 'authenticate',
  description:
    'Accepts a Bearer token that the OAuth 2.0 introspection endpoint (RFC 7662) reports active; answers are cached',
  schema,
  create(config, env) {
    if (config.url.startsWith('http://')) {
      env.warn(
        `oauth2-introspection: url ${config.url} is plain http; the client secret and the tokens travel in clear (use https)`,
      );
    }
    const authorization = basicAuth(config.clientId, config.clientSecret);
    const cache = new TokenCache<Verdict>(config.cacheEntries);
    /** Introspections under way, so a burst with one new token makes one call. */
    const inflight = new Map<string, Promise<Verdict>>();

    async function introspect(token: string): Promise<Verdict> {
      let res: Response;
      try {
        res = await fetch(config.url, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ token, token_type_hint: config.tokenTypeHint }).toString(),
          signal: AbortSignal.timeout(config.timeout),
        });
      } catch (err) {
        const e = err as Error;
        throw new IntrospectionFailed(
          e.name === 'TimeoutError'
            ? `no answer within ${config.timeout}ms`
            : ((e.cause as Error | undefined)?.message ?? e.message),
        );
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new IntrospectionFailed(`status ${res.status}`);
      }
      let body: unknown;
      try {
        body = JSON.parse(await readCapped(res, MAX_RESPONSE_BYTES));
      } catch (err) {
        throw new IntrospectionFailed(`unreadable answer: ${(err as Error).message}`);
      }
      if (!body || typeof body !== 'object' || Array.isArray(body))
        throw new IntrospectionFailed('the answer is not a JSON object');
      const response = body as Record<string, unknown>;
      const now = Date.now();
      const exp = typeof response.exp === 'number' ? response.exp * 1000 : undefined;
      // RFC 7662 §2.2: only `active: true` means active; an exp already past is refused whatever the server says.
      if (response.active !== true || (exp !== undefined && exp <= now)) return null;
      return identityOf(response, env);
    }

    function remember(digest: string, verdict: Verdict): void {
      if (config.cacheTtl <= 0) return;
      const now = Date.now();
      if (verdict === null) return cache.set(digest, null, now + Math.min(NEGATIVE_TTL_MS, config.cacheTtl));
      const exp = verdict.claims.exp;
      const until = now + config.cacheTtl;
      cache.set(digest, verdict, typeof exp === 'number' ? Math.min(until, exp * 1000) : until);
    }

    function apply(ctx: RequestContext, verdict: Verdict): undefined {
      if (verdict === null) {
        (ctx.authChallenges ??= []).push(INACTIVE);
        return undefined;
      }
      ctx.identity = verdict;
      if (config.hideCredentials) ctx.removeRequestHeader('authorization');
      return undefined;
    }

    async function miss(ctx: RequestContext, token: string, digest: string): Promise<Reply | undefined> {
      let pending = inflight.get(digest);
      if (pending === undefined) {
        pending = introspect(token);
        inflight.set(digest, pending);
        pending
          .then(
            (v) => remember(digest, v),
            () => {},
          )
          .finally(() => inflight.delete(digest));
      }
      try {
        return apply(ctx, await pending);
      } catch (err) {
        if (!(err instanceof IntrospectionFailed)) throw err;
        env.logThrottled(`oauth2-introspection:${config.url}`, `token introspection failed: ${err.message}`, {
          url: config.url,
        });
        // The endpoint is unreachable, slow or erring: the token may be valid, so a 401 would tell the client
        // to drop a good token. 503 says a dependency failed (Kong answers 500). Nothing is cached.
        return problemReply('TP_AUTH_UNAVAILABLE', 'The access token could not be checked', ctx.requestId);
      }
    }

    const request: RequestHook = (ctx) => {
      if (ctx.identity !== null) return;
      const token = bearerToken(ctx);
      if (token === undefined) {
        (ctx.authChallenges ??= []).push(REALM);
        return;
      }
      const digest = tokenDigest(token);
      const cached = cache.get(digest);
      if (cached !== undefined) return apply(ctx, cached);
      return miss(ctx, token, digest);
    };
    // The token is introspected as a request's would be (or its cached verdict used).
    return { request, explain: (ctx) => explainAuthentication(request, ctx, () => 'no Bearer token') };
  },
});
