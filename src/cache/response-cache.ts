// One route's HTTP cache (RFC 9111): looks requests up, answers hits (and client conditionals) from the store,
// collapses concurrent misses, revalidates stale entries in line or in the background, serves stale on errors,
// and purges. The per-request side of a miss or revalidation is a CacheExchange.
import { CHANNELS, publishRequest } from '../observability/events.ts';
import type CachePolicy from 'http-cache-semantics';
import type { CidrList } from '../http/cidr.ts';
import { encodeOnce } from '../http/codings.ts';
import type { RequestHookResult } from '../plugins/types.ts';
import { fetchDetached, type DetachedResponse } from '../proxy/detached-fetch.ts';
import { problemReply } from '../pipeline/problem.ts';
import type { Reply, RequestContext, ResponseHead, UpstreamOverride } from '../request-context.ts';
import { CacheExchange, refreshedEntry, storedHeaders, storableResponse } from './cache-exchange.ts';
import type { CacheKey } from './cache-key.ts';
import { isConditional, notModified, notModifiedHeaders } from './conditional.ts';
import { rangeOf } from './range.ts';
import { requestView, responseView, usability, type FreshnessDefaults, type PolicyClass } from './freshness.ts';
import type { FillLocks } from './locks.ts';
import type { CacheEntry, CacheStore } from './store.ts';

export interface ResponseCacheOptions {
  readonly store: CacheStore;
  /** Removes a URL's entries (prefix: every URL under it) wherever this route's cache lives; resolves the count. */
  readonly purge: (key: string, prefix: boolean) => number | Promise<number>;
  readonly key: CacheKey;
  readonly locks: FillLocks;
  readonly defaults: FreshnessDefaults;
  /** The policy class new responses get (its clock: the runtime's, `policyClass`). */
  readonly Policy: PolicyClass;
  readonly maxObjectSize: number;
  readonly lockTimeout: number;
  /** How long past its usefulness a response with a validator is kept, to be revalidated with a 304 (ms). */
  readonly retainStale: number;
  /** The X-Cache header name (lowercase), or null for none. */
  readonly statusHeader: string | null;
  /** Who may PURGE: addresses, consumer names; null when purging is not configured (everyone gets 403). */
  readonly purgeFrom: CidrList | null;
  readonly purgeConsumers: ReadonlySet<string>;
  readonly onError: (message: string, err: unknown) => void;
}

const NO_FIELDS: readonly string[] = [];
const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

export class ResponseCache {
  readonly o: ResponseCacheOptions;
  private readonly labelMiss: UpstreamOverride;
  private readonly labelBypass: UpstreamOverride;

  constructor(options: ResponseCacheOptions) {
    this.o = options;
    this.labelMiss = this.labeller('MISS');
    this.labelBypass = this.labeller('BYPASS');
  }

  request(ctx: RequestContext): RequestHookResult | Promise<RequestHookResult> {
    const method = ctx.req.method;
    if (method === 'GET' || method === 'HEAD') {
      // Cookies the key does not cover may make the answer someone's own: neither looked up nor stored.
      const cookie = ctx.req.headers.cookie;
      if (cookie !== undefined && !this.o.key.admits(cookie)) return this.bypass(ctx);
      return this.lookup(ctx, true);
    }
    if (method === 'PURGE') return this.purge(ctx);
    return this.bypass(ctx);
  }

  private bypass(ctx: RequestContext): undefined {
    labelCache(ctx, 'BYPASS');
    ctx.onUpstream(this.labelBypass);
    return undefined;
  }

  /** RFC 9111 4.4: a successful unsafe request invalidates what is stored for its URL. */
  response(ctx: RequestContext, head: ResponseHead): void {
    if (head.body !== null && head.status < 400 && UNSAFE.has(ctx.req.method!)) {
      void Promise.resolve(this.o.purge(this.o.key.urlKey(ctx), false)).catch((err) =>
        this.o.onError('cache invalidation failed', err),
      );
    }
  }

  private lookup(ctx: RequestContext, mayWait: boolean): RequestHookResult | Promise<RequestHookResult> {
    const cc = ctx.req.headers['cache-control'];
    if (cc !== undefined && /no-store/i.test(cc)) return this.bypass(ctx);
    const key = this.o.key;
    const urlKey = key.urlKey(ctx);
    let fields = NO_FIELDS;
    let variant: string | null = null;
    const found = this.o.store.lookup(urlKey, (f) => {
      fields = f;
      return (variant = key.variant(ctx, f));
    });
    if (found instanceof Promise) {
      return found.then((entry) =>
        this.decide(ctx, urlKey, fields, variant ?? key.variant(ctx, NO_FIELDS), entry, mayWait),
      );
    }
    return this.decide(ctx, urlKey, fields, variant ?? key.variant(ctx, NO_FIELDS), found, mayWait);
  }

  private decide(
    ctx: RequestContext,
    urlKey: string,
    fields: readonly string[],
    variant: string,
    entry: CacheEntry | undefined,
    mayWait: boolean,
  ): RequestHookResult | Promise<RequestHookResult> {
    const h = ctx.req.headers;
    if (entry !== undefined) {
      const use = usability(entry, ctx);
      if (use === 'fresh') return this.replyFrom(ctx, entry, 'HIT');
      if (use === 'stale-while-revalidate') {
        this.refreshInBackground(ctx, urlKey, fields, variant, entry);
        return this.replyFrom(ctx, entry, 'STALE');
      }
    }
    // RFC 9111 5.2.1.7: nothing stored that may answer, and the client asked not to go further.
    const cc = h['cache-control'];
    if (cc !== undefined && /only-if-cached/i.test(cc)) {
      labelCache(ctx, 'MISS');
      return problemReply('TP_NOT_CACHED', undefined, ctx.requestId);
    }
    if (entry === undefined && (ctx.req.method !== 'GET' || h.range !== undefined || isConditional(h))) {
      // Not filled from these: a HEAD has no body, a range is a part, and a conditional client is answered by
      // the upstream (often a 304 with nothing to store). The next plain GET fills.
      labelCache(ctx, 'MISS');
      ctx.onUpstream(this.labelMiss);
      return undefined;
    }
    const lockKey = `${urlKey}\n${variant}`;
    const release = this.o.locks.tryLead(lockKey);
    if (release === null && mayWait) {
      // Another request is filling or revalidating this variant: wait for it, then look again.
      return this.o.locks.wait(lockKey, this.o.lockTimeout).then(() => this.lookup(ctx, false));
    }
    const exchange = new CacheExchange(this, ctx, urlKey, variant, entry, release ?? noop);
    if (release !== null) ctx.whenDone(release);
    if (entry !== undefined) askWithValidators(ctx, entry);
    labelCache(ctx, 'MISS');
    ctx.onUpstream(exchange.override);
    return undefined;
  }

  /** A stored response as this client gets it: Age updated, or a 304 when it holds it already. */
  replyFrom(ctx: RequestContext, entry: CacheEntry, label: string): Reply {
    labelCache(ctx, label);
    const headers: Record<string, string | string[]> = {
      ...entry.headers,
      age: String(Math.floor(entry.policy.age())),
    };
    if (this.o.statusHeader !== null) headers[this.o.statusHeader] = label;
    const h = ctx.req.headers;
    if (isConditional(h) && notModified(h, entry.headers)) {
      const out = notModifiedHeaders(headers);
      if (this.o.statusHeader !== null) out[this.o.statusHeader] = label;
      return { status: 304, headers: out };
    }
    if (entry.status === 200) {
      headers['accept-ranges'] = 'bytes';
      const range = h.range === undefined ? null : rangeOf(h, entry.body.length, entry.headers);
      if (range === 'unsatisfiable') {
        return problemReply(
          'TP_RANGE_NOT_SATISFIABLE',
          `the stored body has ${entry.body.length} bytes`,
          ctx.requestId,
          {
            'content-range': `bytes */${entry.body.length}`,
          },
        );
      }
      if (range !== null) {
        headers['content-range'] = `bytes ${range.start}-${range.end}/${entry.body.length}`;
        return { status: 206, headers, body: entry.body.subarray(range.start, range.end + 1) };
      }
    }
    return { status: entry.status, headers, body: entry.body };
  }

  save(urlKey: string, fields: readonly string[], variant: string, entry: CacheEntry): void {
    const h = entry.headers;
    const ttl =
      entry.policy.timeToLive() + (h.etag !== undefined || h['last-modified'] !== undefined ? this.o.retainStale : 0);
    if (ttl <= 0) return;
    const done = this.o.store.store(urlKey, fields, variant, entry, ttl);
    if (done instanceof Promise) void done.catch((err) => this.o.onError('cache store failed', err));
  }

  /** stale-while-revalidate: the client got the stale copy; one request per variant refreshes it. */
  private refreshInBackground(
    ctx: RequestContext,
    urlKey: string,
    fields: readonly string[],
    variant: string,
    entry: CacheEntry,
  ): void {
    const route = ctx.forwardRoute;
    if (route === null) return;
    const release = this.o.locks.tryLead(`${urlKey}\n${variant}`);
    if (release === null) return;
    askWithValidators(ctx, entry);
    const cacheRequest = requestView(ctx);
    fetchDetached(ctx, route, this.o.maxObjectSize)
      .then((res) => this.absorbRefresh(urlKey, fields, variant, entry, cacheRequest, res))
      .catch((err) => this.o.onError('cache background refresh failed', err))
      .finally(release);
  }

  private async absorbRefresh(
    urlKey: string,
    fields: readonly string[],
    variant: string,
    entry: CacheEntry,
    cacheRequest: CachePolicy.Request,
    res: DetachedResponse,
  ): Promise<void> {
    const d = this.o.defaults;
    if (res.status === 304) {
      const revalidated = entry.policy.revalidatedPolicy(cacheRequest, responseView(304, res.headers, d));
      if (!revalidated.modified)
        this.save(urlKey, fields, variant, refreshedEntry(entry, revalidated.policy, res.headers, this.o.statusHeader));
      return;
    }
    // A body a plugin rewrote whole (xml) cannot be remade here: the entry expires and the next miss fills it.
    if (res.body === null || res.status === 206 || entry.rewritten === true) return;
    const policy = new this.o.Policy(cacheRequest, responseView(res.status, res.headers, d), { shared: true });
    if (!storableResponse(cacheRequest, policy, res.status, res.headers, d, this.o.maxObjectSize)) return;
    const headers = storedHeaders(res.headers, this.o.statusHeader);
    let body = res.body;
    let encodedBy: string | null = null;
    // The variant held a body the gateway encoded: its replacement is encoded the same way.
    if (entry.encodedBy !== null && headers['content-encoding'] === undefined) {
      body = await encodeOnce(entry.encodedBy, body);
      encodedBy = entry.encodedBy;
      headers['content-encoding'] = encodedBy;
      if (typeof headers.etag === 'string' && !headers.etag.startsWith('W/')) headers.etag = `W/${headers.etag}`;
    }
    if (entry.headers.vary !== undefined) headers.vary = entry.headers.vary;
    else delete headers.vary;
    this.save(urlKey, fields, variant, { policy, status: res.status, headers, body, encodedBy });
  }

  private purge(ctx: RequestContext): Reply | Promise<Reply> {
    const o = this.o;
    const consumer = ctx.identity?.consumer?.name;
    const ip = ctx.clientIp;
    const allowed =
      (o.purgeFrom !== null && o.purgeFrom.has(ip)) || (consumer !== undefined && o.purgeConsumers.has(consumer));
    if (!allowed) return problemReply('TP_PURGE_FORBIDDEN', undefined, ctx.requestId);
    const result = ctx.path.endsWith('*')
      ? o.purge(o.key.prefixKey(ctx, ctx.path.slice(0, -1)), true)
      : o.purge(o.key.urlKey(ctx), false);
    const reply = (purged: number): Reply => ({
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: `{"purged":${purged}}\n`,
    });
    if (!(result instanceof Promise)) return reply(result);
    return result.then(reply, (err: unknown) => {
      o.onError('cache purge failed', err);
      return problemReply('TP_STORE_UNAVAILABLE', 'the cache store did not answer', ctx.requestId);
    });
  }

  private labeller(label: string): UpstreamOverride {
    const name = this.o.statusHeader;
    return (_status, head) => {
      if (head !== null && name !== null) head.headers[name] = label;
      return undefined;
    };
  }
}

function noop(): void {}

/** Records what the cache did with this request (access log, events). */
function labelCache(ctx: RequestContext, status: string): void {
  ctx.cacheStatus = status;
  if (CHANNELS.cache.hasSubscribers) publishRequest(CHANNELS.cache, ctx, { status });
}

/** Revalidation asks upstream with the stored validators; the client's own are answered from the refreshed entry. */
function askWithValidators(ctx: RequestContext, entry: CacheEntry): void {
  ctx.removeRequestHeader('if-none-match');
  ctx.removeRequestHeader('if-modified-since');
  const etag = entry.headers.etag;
  const lastModified = entry.headers['last-modified'];
  if (typeof etag === 'string') ctx.setRequestHeader('if-none-match', etag);
  if (typeof lastModified === 'string') ctx.setRequestHeader('if-modified-since', lastModified);
}
