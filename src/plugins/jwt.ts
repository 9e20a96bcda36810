// jwt: accepts requests carrying a valid JSON Web Token (RFC 7519) signed by a configured key or a JWKS key.
// Signature, exp, nbf, iss and aud are checked by jose; only the configured algorithms are accepted, and each key
// only with the algorithms of its own type, so `alg: none` and RSA-key-as-HMAC-secret tokens never verify.
import { readFileSync } from 'node:fs';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { duration, headerName, PATTERNS } from '../config/primitives.ts';
import { secret } from '../config/secret.ts';
import { scopesOf, type Identity } from '../auth/identity.ts';
import { concealQueryCredential } from '../auth/query-credential.ts';
import { TokenCache, tokenDigest } from '../auth/introspection-cache.ts';
import {
  JWT_ALGORITHMS,
  JwksUnavailableError,
  publicKeyFromJwk,
  remoteJwks,
  verifyKey,
  type RemoteJwks,
  type VerifyKey,
} from '../auth/jwks.ts';
import { problemReply } from '../pipeline/problem.ts';
import { formatPath, type CheckProblem } from '../config/problems.ts';
import { cookieValue, removeCookie } from '../http/cookies.ts';
import { removeQueryParam, queryValue } from '../http/query.ts';
import { TurnpikeError, type ErrorCode } from '../errors.ts';
import type { RequestContext } from '../request-context.ts';
import { explainAuthentication } from './explain-support.ts';
import { definePlugin, type PluginEnv, type RequestHook } from './types.ts';

const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const kid = z
  .string()
  .optional()
  .meta({ description: 'the key id: tokens naming it are checked with this key', examples: ['2024-01'] });

const keyEntry = z.union(
  [
    z
      .string()
      .min(1)
      .meta({
        description: 'a PEM public key or certificate, or file:<path> relative to the config file',
        examples: ['file:keys/idp.pem'],
      }),
    z.strictObject({
      pem: z
        .string()
        .min(1)
        .meta({
          description: 'a PEM public key or certificate, or file:<path> relative to the config file',
          examples: ['file:keys/idp.pem'],
        }),
      kid,
    }),
    z
      .strictObject({
        secret: secret(z.string().min(1)).meta({
          description: 'the HS* secret: UTF-8 text of 32 bytes or more, or file:<path>',
          examples: ['${JWT_SECRET}'],
        }),
        kid,
      })
      .meta({ description: 'an HS* secret (UTF-8 text, or file:<path>), at least 32 bytes' }),
    secret(
      z
        .looseObject({
          kty: z
            .enum(['RSA', 'EC', 'OKP', 'oct'])
            .meta({ description: 'the key type (RFC 7517); the other members follow it', examples: ['EC'] }),
          kid,
        })
        .meta({ description: 'a public JWK' }),
      'jwk',
    ),
  ],
  { error: 'expected a PEM string, file:<path>, { pem, kid }, { secret, kid } or a public JWK object with "kty"' },
);

const schema = z
  .strictObject({
    jwksUri: z
      .string()
      .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { message: 'expected an http:// or https:// URL' })
      .optional()
      .meta({
        description: "the identity provider's JWKS URL (fetched, cached for cacheTtl, refetched for an unknown kid)",
        examples: ['https://idp.example.com/.well-known/jwks.json'],
        pattern: PATTERNS.httpUrl,
      }),
    keys: z
      .array(keyEntry)
      .min(1)
      .optional()
      .meta({ description: 'static keys: PEM, file:<path>, { pem, kid }, { secret, kid } or a public JWK' }),
    issuer: oneOrMany
      .optional()
      .meta({ description: 'the accepted iss (one or a list); absent: any', examples: ['https://idp.example.com/'] }),
    audience: oneOrMany
      .optional()
      .meta({ description: 'the accepted aud (one or a list); absent: any', examples: [['orders-api']] }),
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS))
      .min(1)
      .meta({ description: 'the accepted algorithms; "none" is never one', examples: [['RS256', 'ES256']] }),
    clockSkew: duration
      .prefault('30s')
      .meta({ description: 'leeway when checking exp and nbf against the clock', examples: ['1m'] }),
    header: headerName.default('authorization').meta({
      description: 'the header that carries the token (Bearer on Authorization; Bearer or bare on another)',
      examples: ['x-id-token'],
    }),
    query: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'also read the token from this query parameter', examples: ['access_token'] }),
    cookie: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'also read the token from this cookie', examples: ['session'] }),
    hideCredentials: z
      .boolean()
      .default(false)
      .meta({ description: 'remove the token before the request goes upstream' }),
    cacheTtl: duration.prefault('10m').meta({ description: 'how long a fetched JWKS is fresh', examples: ['1h'] }),
    jwksTimeout: duration
      .prefault('2s')
      .meta({ description: 'a JWKS fetch slower than this fails (503 until one succeeds)', examples: ['5s'] }),
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

/** The text of a key source: inline, or the file of `file:<path>` (relative to the config file), or the problem. */
function readSource(value: string, configDir: string): { text: string } | { problem: string } {
  if (!value.startsWith('file:')) return { text: value };
  const given = value.slice(5);
  const file = resolve(configDir, given);
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
    return { problem: `cannot read ${given}${given === file ? '' : ` (${file})`}: ${reason}` };
  }
}

const SHORT_SECRET = 'an HS* secret needs at least 32 bytes (RFC 7518 §3.2)';

/**
 * The static keys, each read and checked: the usable ones, and a problem (at its key path inside the plugin's
 * config, never showing a secret) for each one that is not. `check` lists the problems; `create` refuses on one.
 */
function loadStaticKeys(
  config: JwtConfig,
  configDir: string,
  readFiles = true,
): { keys: VerifyKey[]; problems: CheckProblem[] } {
  const algorithms: ReadonlySet<string> = new Set(config.algorithms);
  const keys: VerifyKey[] = [];
  const problems: CheckProblem[] = [];
  (config.keys ?? []).forEach((entry, i) => {
    const source =
      typeof entry === 'string' ? entry : 'kty' in entry ? '' : 'secret' in entry ? entry.secret : entry.pem;
    if (!readFiles && source.startsWith('file:')) return;
    const fail = (path: string[], message: string, code: ErrorCode = 'TP_CONFIG_INVALID'): void => {
      problems.push({ path: ['keys', i, ...path], message, code });
    };
    let key: KeyObject;
    let kid: string | undefined;
    if (typeof entry === 'object' && 'kty' in entry) {
      try {
        key = publicKeyFromJwk(entry);
      } catch (err) {
        return fail([], `not a usable public JWK (${(err as Error).message})`);
      }
      if (key.type === 'secret' && (key.symmetricKeySize ?? 0) < 32)
        return fail(['k'], `${SHORT_SECRET}; this one has ${key.symmetricKeySize ?? 0}`);
      kid = entry.kid;
    } else if (typeof entry === 'object' && 'secret' in entry) {
      const source = readSource(entry.secret, configDir);
      if ('problem' in source) return fail(['secret'], source.problem, 'TP_CONFIG_FILE');
      const secret = Buffer.from(source.text.replace(/\r?\n$/, ''), 'utf8');
      if (secret.length < 32) return fail(['secret'], `${SHORT_SECRET}; this one has ${secret.length}`);
      key = createSecretKey(secret);
      kid = entry.kid;
    } else {
      const at = typeof entry === 'string' ? [] : ['pem'];
      const source = readSource(typeof entry === 'string' ? entry : entry.pem, configDir);
      if ('problem' in source) return fail(at, source.problem, 'TP_CONFIG_FILE');
      const file = typeof entry === 'string' ? entry : entry.pem;
      const where = file.startsWith('file:') ? `${file.slice(5)}: ` : '';
      if (!source.text.includes('-----BEGIN'))
        return fail(at, `${where}expected a PEM block (-----BEGIN PUBLIC KEY----- or CERTIFICATE)`);
      try {
        key = createPublicKey(source.text); // a private key or certificate yields its public key
      } catch (err) {
        return fail(at, `${where}the PEM block is not a usable key or certificate (${(err as Error).message})`);
      }
      kid = typeof entry === 'string' ? undefined : entry.kid;
    }
    const bound = verifyKey(key, kid, algorithms, typeof entry === 'object' && 'kty' in entry ? entry.alg : undefined);
    if (bound.algs.size === 0)
      return fail(
        [],
        `${bound.describe}, usable with none of the configured algorithms (${[...algorithms].join(', ')})`,
      );
    keys.push(bound);
  });
  return { keys, problems };
}

/** The token from the header (Bearer scheme on Authorization; Bearer or bare on another header), query or cookie. */
function findToken(
  ctx: RequestContext,
  config: JwtConfig,
): { token: string; from: 'header' | 'query' | 'cookie' } | undefined {
  const raw = ctx.req.headers[config.header];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value !== undefined) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
    if (m) return { token: m[1]!, from: 'header' };
    if (config.header !== 'authorization' && /^[\w.~+/=-]+$/.test(value)) return { token: value, from: 'header' };
  }
  if (config.query !== undefined && ctx.query.length > 1) {
    const token = queryValue(ctx.query, config.query);
    if (token !== undefined && token !== '') return { token, from: 'query' };
  }
  if (config.cookie !== undefined) {
    const cookies = ctx.req.headers.cookie;
    const token = cookies === undefined ? undefined : cookieValue(cookies, config.cookie);
    if (token !== undefined && token !== '') return { token, from: 'cookie' };
  }
  return undefined;
}

/** Drops the credential before forwarding (hideCredentials). */
function hideToken(ctx: RequestContext, config: JwtConfig, from: 'header' | 'query' | 'cookie'): void {
  if (from === 'header') {
    ctx.removeRequestHeader(config.header);
  } else if (from === 'query') {
    ctx.query = removeQueryParam(ctx.query, config.query!);
  } else {
    const kept = removeCookie(ctx.req.headers.cookie ?? '', config.cookie!);
    if (kept !== '') ctx.setRequestHeader('cookie', kept);
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
  check(config, env) {
    return loadStaticKeys(config, env.configDir, env.readFiles).problems;
  },
  create(config, env) {
    const algorithms: ReadonlySet<string> = new Set(config.algorithms);
    const loaded = loadStaticKeys(config, env.configDir);
    const problem = loaded.problems[0];
    if (problem !== undefined)
      throw new TurnpikeError(
        problem.code ?? 'TP_CONFIG_INVALID',
        `jwt ${formatPath(problem.path)}: ${problem.message}`,
      );
    const staticKeys = loaded.keys;
    let jwks: RemoteJwks | undefined;
    if (config.jwksUri !== undefined) {
      if (config.jwksUri.startsWith('http://')) {
        env.warn(`jwt: jwksUri ${config.jwksUri} is plain http; anyone on the path can substitute keys (use https)`);
      }
      jwks = remoteJwks({
        uri: config.jwksUri,
        ttl: config.cacheTtl,
        timeout: config.jwksTimeout,
        minInterval: JWKS_MIN_INTERVAL_MS,
      });
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

    async function verify(
      ctx: RequestContext,
      token: string,
      digest: string,
      alg: string,
      kid: string | undefined,
      from: 'header' | 'query' | 'cookie',
    ) {
      let candidates = staticKeys.filter(
        (k) => k.algs.has(alg) && (kid === undefined || k.kid === undefined || k.kid === kid),
      );
      if (jwks) {
        try {
          candidates = candidates.concat((await jwks.lookup(kid, algorithms)).filter((k) => k.algs.has(alg)));
        } catch (err) {
          if (!(err instanceof JwksUnavailableError)) throw err;
          // No key set at all: the token may be fine, so this is a dependency's failure (503), not a 401.
          if (candidates.length === 0)
            return problemReply('TP_AUTH_UNAVAILABLE', 'The token signing keys could not be fetched', ctx.requestId);
        }
      }
      if (candidates.length === 0) return refuse(ctx, FAIL.signature);
      let lastError: unknown;
      for (const candidate of candidates.slice(0, MAX_CANDIDATES)) {
        try {
          const { payload } = await jwtVerify(token, candidate.key, verifyOptions);
          const identity = identityOf(payload, env);
          const now = Date.now();
          const expiresAt =
            typeof payload.exp === 'number'
              ? Math.min(now + VERIFIED_TTL_MS, payload.exp * 1000)
              : now + VERIFIED_TTL_MS;
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

    const request: RequestHook = (ctx) => {
      if (ctx.identity !== null) return;
      const found = findToken(ctx, config);
      if (found === undefined) return refuse(ctx, MISSING);
      const { token, from } = found;
      // A token in the query is a credential like key-auth's: never in the access log, valid or not.
      if (from === 'query') concealQueryCredential(ctx, config.query!, false);
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
    };
    // Verified as a request is: signature (static keys or the JWKS, fetched if need be), exp, nbf, iss, aud.
    return { request, explain: (ctx) => explainAuthentication(request, ctx, () => 'no token') };
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
