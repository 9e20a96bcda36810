// The in-process cache store: variants of each URL in one byte-bounded LRU (lru-cache), with an index from URL
// to its variant keys so a purge removes every variant. Lookups are synchronous: a hit costs no promise.
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../clock.ts';
import type { CacheEntry, CacheStore } from './store.ts';

/** Bytes an entry costs beyond its body and headers: the policy object, the LRU's bookkeeping, the index (measured:
 * ~2,700 B per 1 KiB-body entry in test/e2e/cache-memory.test.ts, against ~1,250 B of body, headers and keys). */
const ENTRY_OVERHEAD = 1500;

interface UrlRecord {
  fields: readonly string[];
  readonly variants: Set<string>;
}

export class MemoryCacheStore implements CacheStore {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly urls = new Map<string, UrlRecord>();

  /** `clock`: what entry lifetimes count down on (the LRU's own clock, performance.now, for the system one). */
  constructor(maxSize: number, clock: Clock = systemClock) {
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize,
      // Another clock is read on every lookup: the LRU's 1 ms reading cache runs on a real timer.
      ...(clock === systemClock ? {} : { perf: { now: clock.monotonic }, ttlResolution: 0 }),
      sizeCalculation: (entry, key) => entrySize(entry, key),
      // Evicted, expired or deleted: the URL index forgets the variant (a replacement keeps it).
      dispose: (_entry, key, reason) => {
        if (reason !== 'set') this.forget(key);
      },
    });
  }

  lookup(urlKey: string, variantOf: (varyFields: readonly string[]) => string): CacheEntry | undefined {
    const url = this.urls.get(urlKey);
    if (url === undefined) return undefined;
    return this.lru.get(`${urlKey}\n${variantOf(url.fields)}`);
  }

  peek(urlKey: string, variantOf: (varyFields: readonly string[]) => string): CacheEntry | undefined {
    const url = this.urls.get(urlKey);
    return url === undefined ? undefined : this.lru.peek(`${urlKey}\n${variantOf(url.fields)}`);
  }

  store(urlKey: string, varyFields: readonly string[], variant: string, entry: CacheEntry, ttl: number): void {
    const key = `${urlKey}\n${variant}`;
    let url = this.urls.get(urlKey);
    if (url === undefined) {
      url = { fields: varyFields, variants: new Set() };
      this.urls.set(urlKey, url);
    } else if (!sameFields(url.fields, varyFields)) {
      // The URL now varies on other fields: variants keyed by the old ones can no longer be found.
      for (const old of [...url.variants]) this.lru.delete(old);
      url = this.urls.get(urlKey) ?? { fields: varyFields, variants: new Set() };
      url.fields = varyFields;
      this.urls.set(urlKey, url);
    }
    url.variants.add(key);
    this.lru.set(key, entry, { ttl: Math.max(1, ttl) });
    // Too big for the whole store: lru-cache refused it; the index must not keep it.
    if (!this.lru.has(key)) this.forget(key);
  }

  purge(urlKey: string): number {
    const url = this.urls.get(urlKey);
    if (url === undefined) return 0;
    let removed = 0;
    for (const key of [...url.variants]) if (this.lru.delete(key)) removed++;
    this.urls.delete(urlKey);
    return removed;
  }

  purgePrefix(prefix: string): number {
    return this.purgeMatching((urlKey) => urlKey.startsWith(prefix));
  }

  purgeMatching(test: (urlKey: string) => boolean): number {
    let removed = 0;
    for (const urlKey of [...this.urls.keys()]) if (test(urlKey)) removed += this.purge(urlKey);
    return removed;
  }

  stats(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  private forget(key: string): void {
    const urlKey = key.slice(0, key.indexOf('\n'));
    const url = this.urls.get(urlKey);
    if (url === undefined) return;
    url.variants.delete(key);
    if (url.variants.size === 0) this.urls.delete(urlKey);
  }
}

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((f, i) => f === b[i]);
}

function entrySize(entry: CacheEntry, key: string): number {
  let headers = 0;
  for (const name in entry.headers) {
    const v = entry.headers[name]!;
    headers += name.length + (Array.isArray(v) ? v.reduce((n, s) => n + s.length + 8, 0) : v.length) + 16;
  }
  return entry.body.length + headers + key.length * 2 + ENTRY_OVERHEAD;
}
