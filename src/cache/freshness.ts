// How http-cache-semantics sees our requests and responses, and the few decisions it leaves to the cache: the
// configured defaults (defaultTtl, stale windows) are written into the policy's view of Cache-Control (never as
// a directive that widens what may be stored), and the request directives (no-cache, max-age, min-fresh,
// max-stale) are read here.
import CachePolicy from 'http-cache-semantics';
import { systemClock, type Clock } from '../clock.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { CacheEntry } from './store.ts';

export interface FreshnessDefaults {
  /** Seconds of freshness for a response that states none (no max-age, s-maxage or Expires); 0: none. */
  readonly defaultTtl: number;
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
  readonly storeSetCookie: boolean;
  /** Store answers to requests with Authorization where RFC 9111 3.5 allows (public, s-maxage, must-revalidate). */
  readonly storeAuthorized: boolean;
}

export type PolicyClass = typeof CachePolicy;

const classes = new WeakMap<Clock, PolicyClass>();

/**
 * The policy class whose ages read `clock`: the library's own for the system clock; otherwise a subclass with
 * its `now()` replaced, which `revalidatedPolicy` and `fromObject` keep (they construct `this.constructor`).
 */
export function policyClass(clock: Clock): PolicyClass {
  if (clock === systemClock) return CachePolicy;
  let Policy = classes.get(clock);
  if (Policy === undefined) {
    Policy = class ClockedPolicy extends CachePolicy {
      now(): number {
        return clock.now();
      }
    };
    classes.set(clock, Policy);
  }
  return Policy;
}

export function directives(value: string | string[] | number | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    out.set(
      name,
      eq === -1
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"|"$/g, ''),
    );
  }
  return out;
}

/** The request as the policy needs it: what decides storing (Authorization, Cache-Control), not the rest. */
export function requestView(ctx: RequestContext): CachePolicy.Request {
  const h = ctx.req.headers;
  const headers: Record<string, string> = { host: ctx.host };
  if (h.authorization !== undefined) headers.authorization = h.authorization;
  if (h['cache-control'] !== undefined) headers['cache-control'] = h['cache-control'];
  if (h.pragma !== undefined) headers.pragma = h.pragma;
  return { method: 'GET', url: ctx.path + ctx.query, headers };
}

const POLICY_FIELDS = ['cache-control', 'expires', 'date', 'age', 'last-modified', 'etag', 'pragma'];

/** The response as the policy sees it: its caching fields, with the configured defaults where it states none. */
export function responseView(
  status: number,
  headers: ResponseHead['headers'],
  d: FreshnessDefaults,
): CachePolicy.Response {
  const view: Record<string, string> = {};
  for (const name of POLICY_FIELDS) {
    const v = headers[name];
    if (v !== undefined) view[name] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  // Set-Cookie only matters by its presence (the policy refuses to keep it fresh); storing it is our choice.
  if (headers['set-cookie'] !== undefined && !d.storeSetCookie) view['set-cookie'] = 'present';
  // A 304 without Cache-Control keeps the stored response's directives (RFC 9111 4.3.4): a default written here
  // would replace them (public, must-revalidate) in the revalidated policy.
  if (status === 304 && view['cache-control'] === undefined) return { status, headers: view };
  const cc = directives(view['cache-control']);
  const added: string[] = [];
  const refused = cc.has('no-store') || cc.has('no-cache') || cc.has('private');
  // max-age, not s-maxage: s-maxage would let a response to a request with Authorization be stored (RFC 9111
  // 3.5), which only the upstream may allow (public, s-maxage, must-revalidate).
  if (d.defaultTtl > 0 && !refused && !cc.has('max-age') && !cc.has('s-maxage') && view.expires === undefined)
    added.push(`max-age=${d.defaultTtl}`);
  if (d.staleWhileRevalidate > 0 && !cc.has('stale-while-revalidate'))
    added.push(`stale-while-revalidate=${d.staleWhileRevalidate}`);
  if (d.staleIfError > 0 && !cc.has('stale-if-error')) added.push(`stale-if-error=${d.staleIfError}`);
  if (added.length > 0)
    view['cache-control'] =
      view['cache-control'] === undefined ? added.join(', ') : `${view['cache-control']}, ${added.join(', ')}`;
  return { status, headers: view };
}

export interface StaleRules {
  /** Seconds past freshness a stored response may be served while one refresh runs. */
  readonly whileRevalidate: number;
  /** Seconds past freshness it may be served when the upstream fails. */
  readonly ifError: number;
  /** must-revalidate / proxy-revalidate: never served stale. */
  readonly mustRevalidate: boolean;
}

const rulesOf = new WeakMap<CachePolicy, StaleRules>();

/** The stale windows of a stored response (computed once per policy: only stale requests ask). */
export function staleRules(policy: CachePolicy): StaleRules {
  let rules = rulesOf.get(policy);
  if (rules === undefined) {
    const cc = (policy.toObject() as { rescc: Record<string, string | boolean> }).rescc;
    rules = {
      whileRevalidate: Number(cc['stale-while-revalidate']) || 0,
      ifError: Number(cc['stale-if-error']) || 0,
      mustRevalidate: cc['must-revalidate'] !== undefined || cc['proxy-revalidate'] !== undefined,
    };
    rulesOf.set(policy, rules);
  }
  return rules;
}

export type Usability = 'fresh' | 'stale-while-revalidate' | 'revalidate';

/** Whether a stored response can answer this request as it is, while a refresh runs, or only after revalidation. */
export function usability(entry: CacheEntry, ctx: RequestContext): Usability {
  const policy = entry.policy;
  const age = policy.age();
  const maxAge = policy.maxAge();
  const h = ctx.req.headers;
  if (h['cache-control'] === undefined && h.pragma === undefined) {
    if (age < maxAge) return 'fresh';
    return staleAllowed(policy, age - maxAge) ? 'stale-while-revalidate' : 'revalidate';
  }
  const cc = directives(h['cache-control']);
  if (cc.has('no-cache') || (h['cache-control'] === undefined && /no-cache/i.test(String(h.pragma))))
    return 'revalidate';
  if (cc.has('max-age') && age > Number(cc.get('max-age'))) return 'revalidate';
  if (cc.has('min-fresh') && maxAge - age < Number(cc.get('min-fresh'))) return 'revalidate';
  if (age < maxAge) return 'fresh';
  const rules = staleRules(policy);
  if (cc.has('max-stale') && !rules.mustRevalidate) {
    const limit = cc.get('max-stale');
    if (limit === '' || age - maxAge <= Number(limit)) return 'fresh';
  }
  return staleAllowed(policy, age - maxAge) ? 'stale-while-revalidate' : 'revalidate';
}

function staleAllowed(policy: CachePolicy, staleFor: number): boolean {
  const rules = staleRules(policy);
  return !rules.mustRevalidate && staleFor < rules.whileRevalidate;
}

/** Whether a stored response may stand in for a failed upstream (stale-if-error). */
export function usableOnError(entry: CacheEntry): boolean {
  const policy = entry.policy;
  const rules = staleRules(policy);
  return !rules.mustRevalidate && policy.age() < policy.maxAge() + rules.ifError;
}
