// Who a request is: set by the authentication plugins, read by authorization, rate limits and the forwarder.

/** A consumer from the top-level `consumers:` list. */
export interface Consumer {
  readonly name: string;
  readonly groups: readonly string[];
}

export type AuthMethod = 'key-auth' | 'basic-auth' | 'jwt' | 'oauth2-introspection';

/**
 * The authenticated identity. `consumer` is null when a credential is valid but maps to no configured consumer
 * (a JWT whose `sub` is not listed): the request is authenticated, with no consumer name or groups.
 */
export interface Identity {
  readonly method: AuthMethod;
  readonly consumer: Consumer | null;
  /** The token's subject (jwt, introspection), or the consumer name. */
  readonly subject: string;
  /** Token claims (jwt payload, introspection response); empty for keys and Basic. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Scopes from the `scope` string or `scp` array claim. */
  readonly scopes: ReadonlySet<string>;
}

export const NO_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
export const NO_SCOPES: ReadonlySet<string> = new Set();

/** Scopes of a claims set: `scope` (space-separated string, RFC 8693/9068) or `scp` (array or string). */
export function scopesOf(claims: Readonly<Record<string, unknown>>): ReadonlySet<string> {
  const out = new Set<string>();
  for (const source of [claims.scope, claims.scp]) {
    if (typeof source === 'string') {
      for (const s of source.split(' ')) if (s !== '') out.add(s);
    } else if (Array.isArray(source)) {
      for (const s of source) if (typeof s === 'string') out.add(s);
    }
  }
  return out;
}
