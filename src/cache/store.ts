// What the cache plugin needs from a store: variants of one URL found through the Vary fields recorded for it,
// bounded storing, and purges by URL or URL prefix. The memory store answers synchronously (a hit costs no
// promise); the Redis store answers with promises.
import type CachePolicy from 'http-cache-semantics';

export type MaybePromise<T> = T | Promise<T>;

/** One stored response: what a hit replays, and the policy that says how long it may. */
export interface CacheEntry {
  /** RFC 9111 rules for this response (freshness, stale windows, revalidation headers). */
  policy: CachePolicy;
  readonly status: number;
  /** Response headers as sent to the client (hop-by-hop fields removed; no Age, no X-Cache). */
  headers: Record<string, string | string[]>;
  readonly body: Buffer;
  /** The content coding the gateway applied (compress) to make `body`, or null when the body is the upstream's. */
  readonly encodedBy: string | null;
  /** A plugin rewrote the body whole (xml, json-transform): a background refresh cannot remake it, so it stores nothing. */
  readonly rewritten?: true;
}

export interface CacheStore {
  /**
   * The entry stored for this URL and request. `variantOf` turns the Vary field names recorded for the URL into
   * the request's variant key. Undefined: nothing stored (or the store failed; stores log their own failures).
   */
  lookup(urlKey: string, variantOf: (varyFields: readonly string[]) => string): MaybePromise<CacheEntry | undefined>;
  /** As `lookup`, for `turnpike explain`: counts nothing (an LRU's recency, a hit) and keeps nothing in memory. */
  peek(urlKey: string, variantOf: (varyFields: readonly string[]) => string): MaybePromise<CacheEntry | undefined>;
  /**
   * Stores one variant; `varyFields` replace those recorded for the URL. `ttl` (ms) is how long the entry may be
   * of any use (fresh + stale windows); the store may drop it sooner (size bound).
   */
  store(
    urlKey: string,
    varyFields: readonly string[],
    variant: string,
    entry: CacheEntry,
    ttl: number,
  ): MaybePromise<void>;
  /** Removes every variant of one URL; returns how many entries went. */
  purge(urlKey: string): MaybePromise<number>;
  /** Removes every variant of every URL whose key starts with `prefix`; returns how many entries went. */
  purgePrefix(prefix: string): MaybePromise<number>;
  /**
   * Removes every variant of every URL whose key passes `test` (the admin API's purge across hosts); returns how
   * many entries went. `contains` is a string every passing key holds: a store may look only at such keys.
   */
  purgeMatching(test: (urlKey: string) => boolean, contains?: string): MaybePromise<number>;
  /** Entries and bytes held (the memory store's bound; the Redis store counts nothing locally). */
  stats(): { entries: number; bytes: number };
}
