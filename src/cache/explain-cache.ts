// The cache's answer to `turnpike explain`: the request's key and variant, and whether a usable response is stored,
// read with the store's `peek` (no LRU recency, no hit counted, no lock taken, no refresh, nothing stored).
import { continues } from '../plugins/explain-support.ts';
import type { PluginExplanation } from '../plugins/types.ts';
import type { RequestContext } from '../request-context.ts';
import { usability } from './freshness.ts';
import type { ResponseCache } from './response-cache.ts';

const NO_FIELDS: readonly string[] = [];

function bypass(why: string): PluginExplanation {
  return continues(`BYPASS: ${why}; forwarded, nothing stored`, { status: 'BYPASS', stored: false });
}

/** The key as shown: a credential in its query (key-auth, jwt) as the access log shows it, `[REDACTED]`. */
function shownKey(ctx: RequestContext, urlKey: string): string {
  const logged = ctx.logUrl;
  if (logged === null || ctx.query === '' || !urlKey.endsWith(ctx.query)) return urlKey;
  const q = logged.indexOf('?');
  return urlKey.slice(0, -ctx.query.length) + (q === -1 ? '' : logged.slice(q));
}

export async function explainCache(cache: ResponseCache, ctx: RequestContext): Promise<PluginExplanation> {
  const o = cache.o;
  const method = ctx.req.method;
  const h = ctx.req.headers;
  if (method === 'PURGE') {
    const consumer = ctx.identity?.consumer?.name;
    const allowed =
      (o.purgeFrom !== null && o.purgeFrom.has(ctx.clientIp)) ||
      (consumer !== undefined && o.purgeConsumers.has(consumer));
    return allowed
      ? { decision: 'answer', status: 200, summary: 'PURGE allowed: would remove the stored entries (not done)' }
      : {
          decision: 'answer',
          status: 403,
          code: 'TP_PURGE_FORBIDDEN',
          summary: 'PURGE refused: 403 TP_PURGE_FORBIDDEN',
        };
  }
  if (method !== 'GET' && method !== 'HEAD') return bypass(`${method} is not cached`);
  if (h.cookie !== undefined && !o.key.admits(h.cookie)) return bypass('a cookie neither keyed nor ignored');
  const cc = h['cache-control'];
  if (cc !== undefined && /no-store/i.test(cc)) return bypass('the request says no-store');
  const urlKey = o.key.urlKey(ctx);
  let variant: string | null = null;
  const entry = await o.store.peek(urlKey, (fields) => (variant = o.key.variant(ctx, fields)));
  variant ??= o.key.variant(ctx, NO_FIELDS);
  const details = { key: shownKey(ctx, urlKey), variant: (variant as string).replaceAll('\x1f', ' | ') };
  if (entry !== undefined) {
    const use = usability(entry, ctx);
    const age = Math.floor(entry.policy.age());
    const stored = { ...details, stored: true, storedStatus: entry.status, age, usable: use };
    if (use === 'fresh')
      return { decision: 'answer', status: entry.status, summary: `HIT: stored ${age} s ago, fresh`, details: stored };
    if (use === 'stale-while-revalidate')
      return {
        decision: 'answer',
        status: entry.status,
        summary: `STALE: stored ${age} s ago; served while one refresh goes upstream`,
        details: stored,
      };
    return continues(`stored ${age} s ago but stale: revalidated with the upstream`, { ...stored, status: 'MISS' });
  }
  if (cc !== undefined && /only-if-cached/i.test(cc))
    return {
      decision: 'answer',
      status: 504,
      code: 'TP_NOT_CACHED',
      summary: 'MISS with only-if-cached: 504 TP_NOT_CACHED',
      details: { ...details, stored: false },
    };
  return continues(`MISS: not stored under ${details.key}; forwarded, and stored if the response allows`, {
    ...details,
    stored: false,
    status: 'MISS',
  });
}
