// Verification keys for the jwt plugin: which algorithms each key may serve (so an RSA public key can never be
// used as an HMAC secret), and remote JWKS sets fetched with a timeout, cached, and refetched on an unknown `kid`
// at most once per interval (a flood of made-up kids costs the identity provider one request per interval).
import { createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';

export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export interface VerifyKey {
  /** Key id; undefined for a static key configured without one (it is tried for any token). */
  readonly kid: string | undefined;
  readonly key: KeyObject;
  /** The algorithms this key may verify: its type's algorithms ∩ the configured ones (∩ its JWK `alg`). */
  readonly algs: ReadonlySet<string>;
  /** What it is, for error messages: "an RSA key", "an EC P-256 key", "a secret". */
  readonly describe: string;
}

const CURVE_ALG: Record<string, JwtAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const CURVE_NAME: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The algorithms a key object can serve, whatever the config says. */
function algorithmsOfKey(key: KeyObject): { algs: JwtAlgorithm[]; describe: string } {
  if (key.type === 'secret') return { algs: ['HS256', 'HS384', 'HS512'], describe: 'a secret' };
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { algs: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'], describe: 'an RSA key' };
    case 'rsa-pss':
      return { algs: ['PS256', 'PS384', 'PS512'], describe: 'an RSA-PSS key' };
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
      const alg = CURVE_ALG[curve];
      return { algs: alg ? [alg] : [], describe: `an EC ${CURVE_NAME[curve] ?? curve} key` };
    }
    case 'ed25519':
    case 'ed448':
      return { algs: ['EdDSA'], describe: `an ${key.asymmetricKeyType === 'ed25519' ? 'Ed25519' : 'Ed448'} key` };
    default:
      return { algs: [], describe: `a ${key.asymmetricKeyType ?? 'unknown'} key` };
  }
}

/** Binds a key to the configured algorithms its type allows (and to its JWK `alg`, when it declares one). */
export function verifyKey(
  key: KeyObject,
  kid: string | undefined,
  configured: ReadonlySet<string>,
  declaredAlg?: unknown,
): VerifyKey {
  const { algs, describe } = algorithmsOfKey(key);
  const usable = algs.filter((a) => configured.has(a) && (typeof declaredAlg !== 'string' || declaredAlg === a));
  return { kid, key, algs: new Set(usable), describe };
}

/** A public JWK → key object; private members are dropped (only the public half is ever needed). */
export function publicKeyFromJwk(jwk: Record<string, unknown>): KeyObject {
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string') throw new Error('an "oct" JWK needs "k"');
    return createSecretKey(Buffer.from(jwk.k, 'base64url'));
  }
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk;
  return createPublicKey({ key: pub as JsonWebKey, format: 'jwk' });
}

/** Raised when no key set could be had at all (first fetch failed, or failing within the retry interval). */
export class JwksUnavailableError extends Error {
  override name = 'JwksUnavailableError';
}

export interface RemoteJwksOptions {
  readonly uri: string;
  /** How long a fetched set is fresh; a stale set keeps serving while a refresh runs. */
  readonly ttl: number;
  readonly timeout: number;
  /** Minimum time between two fetch attempts (unknown kids, refreshes, retries after failures). */
  readonly minInterval: number;
}

const MAX_JWKS_BYTES = 512 * 1024;
const MAX_KEYS = 100;

/** One remote JWKS URL. Keys are kept as JWK-derived key objects, bound to algorithms at lookup. */
export class RemoteJwks {
  readonly options: RemoteJwksOptions;
  private keys: readonly { jwk: Record<string, unknown>; key: KeyObject }[] | null = null;
  private fetchedAt = 0;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | null = null;
  /** Reports fetch failures (set by the plugin; a throttled logger). */
  onError: (message: string) => void = () => {};
  /** Successful fetches, for diagnostics. */
  fetches = 0;

  constructor(options: RemoteJwksOptions) {
    this.options = options;
  }

  /**
   * The set's keys whose kid matches (all keys when `kid` is undefined), bound to `configured`. Synchronous when
   * the cached set answers; waits for a fetch when there is no set yet or the kid is unknown (rate-limited).
   */
  lookup(kid: string | undefined, configured: ReadonlySet<string>): VerifyKey[] | Promise<VerifyKey[]> {
    const now = performance.now();
    if (this.keys === null) {
      if (this.pending === null && now - this.attemptedAt < this.options.minInterval)
        throw new JwksUnavailableError('JWKS unavailable');
      return this.refresh().then(() => {
        if (this.keys === null) throw new JwksUnavailableError('JWKS unavailable');
        return this.select(kid, configured);
      });
    }
    const found = this.select(kid, configured);
    const mayFetch = this.pending !== null || now - this.attemptedAt >= this.options.minInterval;
    if (kid !== undefined && found.length === 0 && mayFetch) {
      return this.refresh().then(() => this.select(kid, configured));
    }
    // Stale: refresh in the background and answer from the stale set meanwhile (an IdP outage keeps old keys).
    if (now - this.fetchedAt >= this.options.ttl && mayFetch) void this.refresh();
    return found;
  }

  private select(kid: string | undefined, configured: ReadonlySet<string>): VerifyKey[] {
    const out: VerifyKey[] = [];
    for (const { jwk, key } of this.keys ?? []) {
      const keyKid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
      if (kid !== undefined && keyKid !== kid) continue;
      const bound = verifyKey(key, keyKid, configured, jwk.alg);
      if (bound.algs.size > 0) out.push(bound);
    }
    return out;
  }

  /** One fetch at a time; callers arriving meanwhile share it. Never rejects. */
  refresh(): Promise<void> {
    if (this.pending) return this.pending;
    this.attemptedAt = performance.now();
    this.pending = this.fetchSet()
      .then((keys) => {
        this.keys = keys;
        this.fetchedAt = performance.now();
        this.fetches++;
      })
      .catch((err: unknown) => this.onError(`JWKS fetch from ${this.options.uri} failed: ${(err as Error).message}`))
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  private async fetchSet(): Promise<{ jwk: Record<string, unknown>; key: KeyObject }[]> {
    const res = await fetch(this.options.uri, {
      headers: { accept: 'application/jwk-set+json, application/json' },
      signal: AbortSignal.timeout(this.options.timeout),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`status ${res.status}`);
    }
    const text = await readCapped(res, MAX_JWKS_BYTES);
    const body = JSON.parse(text) as { keys?: unknown };
    if (!body || !Array.isArray(body.keys)) throw new Error('the response has no "keys" array');
    const keys: { jwk: Record<string, unknown>; key: KeyObject }[] = [];
    for (const jwk of body.keys.slice(0, MAX_KEYS) as unknown[]) {
      if (!jwk || typeof jwk !== 'object') continue;
      const j = jwk as Record<string, unknown>;
      // Signing keys only; a published set never carries secrets, so "oct" keys are ignored.
      if (j.use !== undefined && j.use !== 'sig') continue;
      if (Array.isArray(j.key_ops) && !j.key_ops.includes('verify')) continue;
      if (j.kty === 'oct') continue;
      try {
        keys.push({ jwk: j, key: publicKeyFromJwk(j) });
      } catch {
        // An unusable key (unknown curve, bad encoding) is skipped, the others still serve.
      }
    }
    return keys;
  }
}

/** Reads a response body as text, refusing more than `max` bytes. */
export async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > max) {
    await res.body?.cancel();
    throw new Error(`response larger than ${max} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > max) throw new Error(`response larger than ${max} bytes`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

// Shared by every route and config reload using the same URL and settings: a global jwt plugin on 50 routes
// (or a reload) does not multiply fetches, and keeps the keys already fetched.
const registry = new Map<string, RemoteJwks>();

export function remoteJwks(options: RemoteJwksOptions): RemoteJwks {
  const id = `${options.uri}\n${options.ttl}\n${options.timeout}\n${options.minInterval}`;
  let set = registry.get(id);
  if (!set) registry.set(id, (set = new RemoteJwks(options)));
  return set;
}
