// jwt: accepts requests carrying a valid JSON Web Token (RFC 7519) signed by a configured key or a JWKS key.
// Signature, exp, nbf, iss and aud are checked by jose; only the configured algorithms are accepted, and each key
// only with the algorithms of its own type, so `alg: none` and RSA-key-as-HMAC-secret tokens never verify.
import { readFileSync } from 'node:fs';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { duration, headerName } from '../config/primitives.ts';
import { scopesOf, type Identity } from '../auth/identity.ts';
import { TokenCache, tokenDigest } from '../auth/introspection-cache.ts';
import { JWT_ALGORITHMS, JwksUnavailableError, publicKeyFromJwk, remoteJwks, verifyKey, type RemoteJwks, type VerifyKey } from '../auth/jwks.ts';
import { problemReply } from '../proxy/problem.ts';
import { TurnpikeError } from '../errors.ts';
import type { RequestContext } from '../request-context.ts';
import { definePlugin, type PluginEnv } from './types.ts';

const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const keyEntry = z.union([
  z.string().min(1).meta({ description: 'a PEM public key or certificate, or file:<path> relative to the config file' }),
  z.strictObject({ pem: z.string().min(1), kid: z.string().optional() }),
  z.strictObject({ secret: z.string().min(1), kid: z.string().optional() }).meta({ description: 'an HS* secret (UTF-8 text, or file:<path>), at least 32 bytes' }),
  z.looseObject({ kty: z.enum(['RSA', 'EC', 'OKP', 'oct']), kid: z.string().optional() }).meta({ description: 'a public JWK' }),
], { error: 'expected a PEM string, file:<path>, { pem, kid }, { secret, kid } or a public JWK object with "kty"' });

const schema = z
  .strictObject({
    jwksUri: z.string().refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { message: 'expected an http:// or https:// URL' }).optional(),
    keys: z.array(keyEntry).min(1).optional(),
    issuer: oneOrMany.optional(),
    audience: oneOrMany.optional(),
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).meta({ description: 'the accepted algorithms; "none" is never one' }),
    clockSkew: duration.prefault('30s'),
    header: headerName.default('authorization'),
    query: z.string().min(1).optional().meta({ description: 'also read the token from this query parameter' }),
    cookie: z.string().min(1).optional().meta({ description: 'also read the token from this cookie' }),
    hideCredentials: z.boolean().default(false),
    cacheTtl: duration.prefault('10m').meta({ description: 'how long a fetched JWKS is fresh' }),
    jwksTimeout: duration.prefault('2s'),
  })
  .refine((c) => c.jwksUri !== undefined || c.keys !== undefined, { message: 'jwt needs jwksUri, keys, or both' });

type JwtConfig = z.output<typeof schema>;

/** Verified tokens are remembered this long at most (and never past their exp), to skip the signature check. */
const VERIFIED_TTL_MS = 30_000;
const VERIFIED_MAX_ENTRIES = 4096;
/** An unknown kid refetches the JWKS at most this often. */
const JWKS_MIN_INTERVAL_MS = 10_000;
/** Candidate keys tried for one token (kid-less tokens against several keys). */
const MAX_CANDIDATES = 8;

const REALM = 'Bearer realm="turnpike"';
const MISSING = REALM;
function invalid(description: string): string {
  return `${REALM}, error="invalid_token", error_description="${description}"`;
}
// One description per class of failure: enough to fix a client, nothing an attacker can probe further with.
const FAIL = {
  malformed: invalid('The token is malformed'),
  algorithm: invalid('The token algorithm is not accepted'),
  signature: invalid('The token signature could not be verified'),
  expired: invalid('The token has expired'),
  notYetValid: invalid('The token is not yet valid'),
  audience: invalid('The token issuer or audience is not accepted'),
  claims: invalid('The token claims are invalid'),
} as const;

function readSource(value: string, configDir: string): string {
  return value.startsWith('file:') ? readFileSync(resolve(configDir, value.slice(5)), 'utf8') : value;
}

function loadStaticKeys(config: JwtConfig, env: PluginEnv, algorithms: ReadonlySet<string>): VerifyKey[] {
  return (config.keys ?? []).map((entry, i) => {
    const where = `jwt keys[${i}]`;
    let key: KeyObject;
    let kid: string | undefined;
    try {
      if (typeof entry === 'object' && 'kty' in entry) {
        key = publicKeyFromJwk(entry);
        if (key.type === 'secret' && (key.symmetricKeySize ?? 0) < 32) throw new Error('an HS* secret needs at least 32 bytes (RFC 7518 §3.2)');
        kid = entry.kid;
      } else if (typeof entry === 'object' && 'secret' in entry) {
        const secret = Buffer.from(readSource(entry.secret, env.configDir).replace(/\r?\n$/, ''), 'utf8');
        if (secret.length < 32) throw new Error('an HS* secret needs at least 32 bytes (RFC 7518 §3.2)');
        key = createSecretKey(secret);
        kid = entry.kid;
      } else {
        const text = readSource(typeof entry === 'string' ? entry : entry.pem, env.configDir);
        if (!text.includes('-----BEGIN')) throw new Error('expected a PEM block (-----BEGIN PUBLIC KEY----- or CERTIFICATE)');
        key = createPublicKey(text); // a private key or certificate yields its public key
        kid = typeof entry === 'string' ? undefined : entry.kid;
      }
    } catch (err) {
      throw new TurnpikeError('TP_CONFIG_INVALID', `${where}: ${(err as Error).message}`);
    }
    const bound = verifyKey(key, kid, algorithms, typeof entry === 'object' && 'kty' in entry ? entry.alg : undefined);
    if (bound.algs.size === 0) {
      throw new TurnpikeError('TP_CONFIG_INVALID', `${where} is ${bound.describe}, usable with none of the configured algorithms (${[...algorithms].join(', ')})`);
    }
    return bound;
  });
}

/** The token from the header (Bearer scheme on Authorization; Bearer or bare on another header), query or cookie. */
function findToken(ctx: RequestContext, config: JwtConfig): { token: string; from: 'header' | 'query' | 'cookie' } | undefined {
  const raw = ctx.req.headers[config.header];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value !== undefined) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
    if (m) return { token: m[1]!, from: 'header' };
    if (config.header !== 'authorization' && /^[\w.~+/=-]+$/.test(value)) return { token: value, from: 'header' };
  }
  if (config.query !== undefined && ctx.query.length > 1) {
    const prefix = `${config.query}=`;
    for (const part of ctx.query.slice(1).split('&')) {
      if (part.startsWith(prefix) && part.length > prefix.length) return { token: safeDecode(part.slice(prefix.length)), from: 'query' };
    }
  }
  if (config.cookie !== undefined) {
    const cookies = ctx.req.headers.cookie;
    if (cookies !== undefined) {
      const prefix = `${config.cookie}=`;
      for (const c of cookies.split(';')) {
        const t = c.trim();
        if (t.startsWith(prefix) && t.length > prefix.length) return { token: t.slice(prefix.length), from: 'cookie' };
      }
    }
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Drops the credential before forwarding (hideCredentials). */
function hideToken(ctx: RequestContext, config: JwtConfig, from: 'header' | 'query' | 'cookie'): void {
  if (from === 'header') {
    ctx.removeRequestHeader(config.header);
  } else if (from === 'query') {
    const kept = ctx.query.slice(1).split('&').filter((p) => !p.startsWith(`${config.query}=`));
    ctx.query = kept.length > 0 ? `?${kept.join('&')}` : '';
  } else {
    const kept = (ctx.req.headers.cookie ?? '').split(';').map((c) => c.trim()).filter((c) => c !== '' && !c.startsWith(`${config.cookie}=`));
    if (kept.length > 0) ctx.setRequestHeader('cookie', kept.join('; '));
    else ctx.removeRequestHeader('cookie');
  }
}

/** The jose failure → the challenge for its class. */
function challengeFor(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return FAIL.expired;
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return FAIL.notYetValid;
      if (e.claim === 'iss' || e.claim === 'aud') return FAIL.audience;
      return FAIL.claims;
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return FAIL.algorithm;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return FAIL.malformed;
    default:
      return FAIL.signature;
  }
}

export const jwtPlugin = definePlugin({
  name: 'jwt',
  phase: 'authenticate',
  description: 'Accepts requests with a valid JWT (Bearer): signature by static keys or a JWKS URL, exp, nbf, iss, aud',
  schema,
  create(config, env) {
    const algorithms: ReadonlySet<string> = new Set(config.algorithms);
    const staticKeys = loadStaticKeys(config, env, algorithms);
    let jwks: RemoteJwks | undefined;
    if (config.jwksUri !== undefined) {
      if (config.jwksUri.startsWith('http://')) {
        env.warn(`jwt: jwksUri ${config.jwksUri} is plain http; anyone on the path can substitute keys (use https)`);
      }
      jwks = remoteJwks({ uri: config.jwksUri, ttl: config.cacheTtl, timeout: config.jwksTimeout, minInterval: JWKS_MIN_INTERVAL_MS });
      const uri = config.jwksUri;
      jwks.onError = (message) => env.logThrottled(`jwt-jwks:${uri}`, message, { jwksUri: uri });
    }
    const verifyOptions = {
      algorithms: config.algorithms as string[],
      clockTolerance: config.clockSkew / 1000,
      ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
      ...(config.audience !== undefined ? { audience: config.audience } : {}),
    };
    const verified = new TokenCache<Identity>(VERIFIED_MAX_ENTRIES);

    function accept(ctx: RequestContext, identity: Identity, from: 'header' | 'query' | 'cookie'): undefined {
      ctx.identity = identity;
      if (config.hideCredentials) hideToken(ctx, config, from);
      return undefined;
    }

    function refuse(ctx: RequestContext, challenge: string): undefined {
      (ctx.authChallenges ??= []).push(challenge);
      return undefined;
    }

    async function verify(ctx: RequestContext, token: string, digest: string, alg: string, kid: string | undefined, from: 'header' | 'query' | 'cookie') {
      let candidates = staticKeys.filter((k) => k.algs.has(alg) && (kid === undefined || k.kid === undefined || k.kid === kid));
      if (jwks) {
        try {
          candidates = candidates.concat((await jwks.lookup(kid, algorithms)).filter((k) => k.algs.has(alg)));
        } catch (err) {
          if (!(err instanceof JwksUnavailableError)) throw err;
          // No key set at all: the token may be fine, so this is a dependency's failure (503), not a 401.
          if (candidates.length === 0) return problemReply('TP_AUTH_UNAVAILABLE', 'The token signing keys could not be fetched', ctx.requestId);
        }
      }
      if (candidates.length === 0) return refuse(ctx, FAIL.signature);
      let lastError: unknown;
      for (const candidate of candidates.slice(0, MAX_CANDIDATES)) {
        try {
          const { payload } = await jwtVerify(token, candidate.key, verifyOptions);
          const identity = identityOf(payload, env);
          const now = Date.now();
          const expiresAt = typeof payload.exp === 'number' ? Math.min(now + VERIFIED_TTL_MS, payload.exp * 1000) : now + VERIFIED_TTL_MS;
          verified.set(digest, identity, expiresAt);
          return accept(ctx, identity, from);
        } catch (err) {
          lastError = err;
          // A wrong key (kid-less token, several keys): try the next; any other failure is the token's.
          if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
        }
      }
      return refuse(ctx, challengeFor(lastError));
    }

    return {
      request(ctx) {
        if (ctx.identity !== null) return;
        const found = findToken(ctx, config);
        if (found === undefined) return refuse(ctx, MISSING);
        const { token, from } = found;
        const digest = tokenDigest(token);
        const hit = verified.get(digest);
        if (hit !== undefined) return accept(ctx, hit, from);
        let header;
        try {
          header = decodeProtectedHeader(token);
        } catch {
          return refuse(ctx, FAIL.malformed);
        }
        if (typeof header.alg !== 'string' || !algorithms.has(header.alg)) return refuse(ctx, FAIL.algorithm);
        const kid = typeof header.kid === 'string' ? header.kid : undefined;
        return verify(ctx, token, digest, header.alg, kid, from);
      },
    };
  },
});

function identityOf(payload: JWTPayload, env: PluginEnv): Identity {
  const subject = typeof payload.sub === 'string' ? payload.sub : '';
  return Object.freeze({
    method: 'jwt' as const,
    consumer: subject !== '' ? (env.consumers.byJwtSubject(subject) ?? null) : null,
    subject,
    claims: Object.freeze(payload) as Readonly<Record<string, unknown>>,
    scopes: scopesOf(payload),
  });
}
