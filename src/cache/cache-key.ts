// Cache keys, compiled from the plugin's `key:` list at load. A key has two halves: the URL key (host, path,
// query) that purges address, and the variant (method, consumer, configured headers and cookies, then the fields
// the response's Vary names) that tells apart the responses stored under one URL.
import { codingWeights } from '../http/codings.ts';
import type { RequestContext } from '../request-context.ts';
import { compileCookieRules, keyedCookies, type CookieRules } from './cookies.ts';

export type KeyPart = 'method' | 'host' | 'path' | 'query' | 'consumer' | `header:${string}` | `cookie:${string}`;

/**
 * As Kong keys its cache by consumer: on a route whose authentication identified a consumer, each consumer has
 * its own entries unless `key:` says otherwise (a response may depend on who asked without saying Vary). Empty,
 * so free, on routes without authentication.
 */
export const DEFAULT_KEY: readonly KeyPart[] = ['host', 'path', 'query', 'consumer'];

/** Between variant parts: a byte no header value or method carries. */
const SEP = '\x1f';

export interface CacheKey {
  /** Whether a request with this Cookie header may be served and stored: each cookie keyed or ignored. */
  admits(cookieHeader: string): boolean;
  urlKey(ctx: RequestContext): string;
  /** The URL key of every URL under this path prefix (a purge ending in `*`). */
  prefixKey(ctx: RequestContext, pathPrefix: string): string;
  variant(ctx: RequestContext, varyFields: readonly string[]): string;
}

/** `ignoreCookies`: cookie names (and `*` globs) that do not change the answer. */
export function compileCacheKey(parts: readonly KeyPart[], ignoreCookies: readonly string[] = []): CacheKey {
  const host = parts.includes('host');
  const path = parts.includes('path');
  const query = parts.includes('query');
  const method = parts.includes('method');
  const consumer = parts.includes('consumer');
  // The schema takes the prefix in any case (`Header:X`); the cookie name keeps its case.
  const named = (prefix: string): string[] =>
    parts.filter((p) => p.slice(0, 7).toLowerCase() === prefix).map((p) => p.slice(7));
  const headers = named('header:').map((h) => h.toLowerCase());
  const cookies = compileCookieRules(named('cookie:'), ignoreCookies);
  return {
    admits: (cookieHeader) => keyedCookies(cookieHeader, cookies) !== null,
    urlKey: (ctx) => `${host ? ctx.host.toLowerCase() : ''}${path ? ctx.path : ''}${query ? ctx.query : ''}`,
    prefixKey: (ctx, pathPrefix) => `${host ? ctx.host.toLowerCase() : ''}${path ? pathPrefix : ''}`,
    variant(ctx, varyFields) {
      let out = method ? (ctx.req.method === 'HEAD' ? 'GET' : ctx.req.method!) : '';
      if (consumer) out += SEP + (ctx.identity?.consumer?.name ?? '');
      for (const h of headers) out += SEP + headerValue(ctx, h);
      if (cookies.keyed.length > 0) out += cookieValues(ctx, cookies);
      for (const f of varyFields) out += SEP + varyValue(ctx, f);
      return out;
    },
  };
}

/** Absent and empty differ (`=` before a value): `session=` is not the anonymous variant. */
function cookieValues(ctx: RequestContext, rules: CookieRules): string {
  const header = ctx.req.headers.cookie;
  const values = header === undefined ? [] : keyedCookies(header, rules);
  // Not reached for requests admits() refused; if it were, a variant no admitted request has.
  if (values === null) return SEP + '\x1e';
  let out = '';
  for (let i = 0; i < rules.keyed.length; i++) out += SEP + (values[i] === undefined ? '' : `=${values[i]}`);
  return out;
}

function headerValue(ctx: RequestContext, name: string): string {
  const v = ctx.req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v.trim();
}

/**
 * The value a Vary field selects on: the field as the upstream got it, so a header the gateway sets (a consumer
 * header, a `headers` plugin value) keys the variant, and a client's copy the gateway drops does not.
 * Accept-Encoding is reduced to the weights of the codings the gateway and upstreams produce, so
 * "gzip, deflate, br" and "br, gzip, deflate" share a variant (as Varnish normalises it) while a client refusing
 * a coding never gets it.
 */
export function varyValue(ctx: RequestContext, field: string): string {
  const set = ctx.setRequestHeaders;
  if (set !== null) {
    for (let i = set.length - 2; i >= 0; i -= 2) if (set[i] === field) return set[i + 1]!;
  }
  const route = ctx.forwardRoute;
  if (route !== null && (field === route.consumerNameHeader || field === route.consumerGroupsHeader)) {
    const consumer = ctx.identity?.consumer;
    if (consumer === undefined || consumer === null) return '';
    return field === route.consumerNameHeader ? consumer.name : consumer.groups.join(',');
  }
  if (ctx.removeRequestHeaders?.has(field) === true) return '';
  if (field === 'accept-encoding') return codingWeights(headerValue(ctx, field));
  return headerValue(ctx, field);
}

/** Field names of a Vary value, lowercased; ['*'] when it varies on everything (never stored). */
export function varyFieldsOf(vary: string | string[] | number | undefined): string[] {
  if (vary === undefined) return [];
  const text = Array.isArray(vary) ? vary.join(',') : String(vary);
  const fields = text
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '');
  return [...new Set(fields)].sort();
}
