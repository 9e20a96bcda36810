// The cache's side of one forwarded request (a miss it fills, or a stale entry it revalidates): decides from the
// upstream's answer whether the client gets a stored response (304 refresh, stale-if-error) or the upstream's,
// and whether that one is stored while it streams.
import type CachePolicy from 'http-cache-semantics';
import type { RequestContext, ResponseHead, UpstreamOverride } from '../request-context.ts';
import { varyFieldsOf } from './cache-key.ts';
import { Fill } from './fill.ts';
import { requestView, responseView, usableOnError, type FreshnessDefaults } from './freshness.ts';
import type { ResponseCache } from './response-cache.ts';
import type { CacheEntry } from './store.ts';

// Hop-by-hop fields, and Age (the policy keeps the age; a hit computes its own).
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'age',
]);

/** Response headers as stored: hop-by-hop fields, Age (the policy keeps it) and the X-Cache label left out. */
export function storedHeaders(
  headers: ResponseHead['headers'],
  statusHeader: string | null,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || NOT_STORED.has(name) || name === statusHeader) continue;
    out[name] = typeof v === 'number' ? String(v) : v;
  }
  return out;
}

/**
 * Whether a response may be stored at all, beyond the policy's own rules: our size bound, Set-Cookie, Vary: *, and
 * a request with Authorization (never, unless `storeAuthorized`: a backend that marks a logged-in user's page
 * `public` by mistake must not have it replayed to everyone, as Varnish's built-in policy and catalogue row C02 hold).
 */
export function storableResponse(
  request: CachePolicy.Request,
  policy: CachePolicy,
  status: number,
  headers: ResponseHead['headers'],
  d: FreshnessDefaults,
  maxObjectSize: number,
): boolean {
  if (status === 206 || status === 304 || headers['content-range'] !== undefined) return false;
  if (headers['set-cookie'] !== undefined && !d.storeSetCookie) return false;
  if (request.headers.authorization !== undefined && !d.storeAuthorized) return false;
  const length = headers['content-length'];
  if (length !== undefined && Number(length) > maxObjectSize) return false;
  if (varyFieldsOf(headers.vary).includes('*')) return false;
  return policy.storable() && policy.timeToLive() > 0;
}

/** A stored entry updated by a 304 (RFC 9111 4.3.4): its fields replace the stored ones, the body stays. */
export function refreshedEntry(
  entry: CacheEntry,
  policy: CachePolicy,
  notModified: ResponseHead['headers'],
  statusHeader: string | null,
): CacheEntry {
  const headers = { ...entry.headers };
  const update = storedHeaders(notModified, statusHeader);
  for (const name in update) {
    if (name.startsWith('content-')) continue;
    // A body the gateway encoded keeps its weak validator: the upstream's strong one names other bytes.
    if (name === 'etag' && entry.encodedBy !== null) continue;
    headers[name] = update[name]!;
  }
  return { ...entry, policy, headers };
}

export class CacheExchange {
  private readonly cache: ResponseCache;
  private readonly ctx: RequestContext;
  private readonly urlKey: string;
  private readonly variant: string;
  private readonly entry: CacheEntry | undefined;
  private readonly release: () => void;
  /** Headers as the upstream sent them (before response plugins), and the live head the plugins change. */
  private stored: Record<string, string | string[]> | null = null;
  private head: ResponseHead['headers'] | null = null;
  private policy: CachePolicy | null = null;
  private status = 0;
  private body: ResponseHead['body'] = null;
  private get rewritten(): boolean {
    return this.body !== null && this.body.whole !== null;
  }
  /** Content-Encoding as the upstream sent it. */
  private upstreamCoding: ResponseHead['headers'][string] = undefined;

  constructor(
    cache: ResponseCache,
    ctx: RequestContext,
    urlKey: string,
    variant: string,
    entry: CacheEntry | undefined,
    release: () => void,
  ) {
    this.cache = cache;
    this.ctx = ctx;
    this.urlKey = urlKey;
    this.variant = variant;
    this.entry = entry;
    this.release = release;
  }

  readonly override: UpstreamOverride = (status, head) => {
    const o = this.cache.o;
    const entry = this.entry;
    if (head === null)
      return entry !== undefined && usableOnError(entry) ? this.cache.replyFrom(this.ctx, entry, 'STALE') : undefined;
    const headers = head.headers;
    const cacheRequest = requestView(this.ctx);
    if (entry !== undefined) {
      if (status === 304) {
        const revalidated = entry.policy.revalidatedPolicy(cacheRequest, responseView(304, headers, o.defaults));
        if (!revalidated.modified) {
          const refreshed = refreshedEntry(entry, revalidated.policy, headers, o.statusHeader);
          this.cache.save(this.urlKey, varyFieldsOf(refreshed.headers.vary), this.variant, refreshed);
          this.release();
          return this.cache.replyFrom(this.ctx, refreshed, 'REVALIDATED');
        }
      }
      if (status >= 500 && usableOnError(entry)) return this.cache.replyFrom(this.ctx, entry, 'STALE');
    }
    let filling = false;
    if (this.ctx.req.method === 'GET') {
      const policy = new o.Policy(cacheRequest, responseView(status, headers, o.defaults), { shared: true });
      if (storableResponse(cacheRequest, policy, status, headers, o.defaults, o.maxObjectSize)) {
        this.policy = policy;
        this.status = status;
        this.stored = storedHeaders(headers, o.statusHeader);
        this.upstreamCoding = headers['content-encoding'];
        this.head = headers;
        // Read when the body is complete: whole-body stages are added by response hooks, after this override.
        this.body = head.body;
        // The tap sees the body after every stage (compress): a variant is stored as the client gets it.
        if (head.body !== null) {
          head.body.tap(new Fill(o.maxObjectSize, this.complete, this.release));
          filling = true;
        }
      }
    }
    // Nothing will be stored: requests waiting for this one go upstream now, not when this body ends.
    if (!filling) this.release();
    if (o.statusHeader !== null) headers[o.statusHeader] = 'MISS';
    return undefined;
  };

  /** The body went to the client whole: store it under the variant the final headers (Vary) call for. */
  private readonly complete = (body: Buffer): void => {
    const stored = this.stored!;
    const final = this.head!;
    // Response plugins ran since: the body is as they left it (xml, compress), so are the fields describing it.
    for (const name of ['content-type', 'content-encoding', 'etag', 'vary']) {
      const v = final[name];
      if (v === undefined) delete stored[name];
      else stored[name] = typeof v === 'number' ? String(v) : v;
    }
    delete stored['content-length'];
    const fields = varyFieldsOf(stored.vary);
    if (!fields.includes('*')) {
      // Encoded by a body stage of the gateway (not by the upstream): a refresh re-encodes the same way.
      const encodedBy =
        this.upstreamCoding === undefined && final['content-encoding'] !== undefined
          ? String(final['content-encoding'])
          : null;
      const variant = this.cache.o.key.variant(this.ctx, fields);
      this.cache.save(this.urlKey, fields, variant, {
        policy: this.policy!,
        status: this.status,
        headers: stored,
        body,
        encodedBy,
        ...(this.rewritten ? { rewritten: true as const } : {}),
      });
    }
    this.release();
  };
}
