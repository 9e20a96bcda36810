// The HTTP cache in Redis (`cache: { store: redis }`), shared by every gateway instance. Per URL: a record of its
// Vary field names, one binary entry per variant, and a set naming the variants (for purges). The URL key is
// the hash tag ({...}) of all three, so a script touching them runs on one Cluster slot. Lookups and stores
// never reject (a failing Redis is a miss); purges reject, so the caller can say it is not known to have happened
// (a purge sent to a frozen Redis may still run once it wakes).
import CachePolicy from 'http-cache-semantics';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../stores/redis-client.ts';
import { RedisScript } from '../stores/redis-script.ts';
import type { PolicyClass } from './freshness.ts';
import type { CacheEntry, CacheStore } from './store.ts';

// KEYS: record, entry, set. ARGV: Vary fields (JSON), entry bytes, ttl ms, variant.
// The record and set live as long as the longest-lived entry: a short-lived variant must not hide the others.
const STORE = `
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
local keep = math.max(ttl, redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[3]))
redis.call('SET', KEYS[1], ARGV[1], 'PX', keep)
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[3], keep)
return 1
`;
// KEYS: record, set. ARGV: the URL's entry key prefix. Returns how many entries were still there.
const PURGE = `
local n = 0
for _, variant in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  n = n + redis.call('DEL', ARGV[1] .. variant)
end
redis.call('DEL', KEYS[1], KEYS[2])
return n
`;
const STORE_SCRIPT = new RedisScript(STORE);
const PURGE_SCRIPT = new RedisScript(PURGE);

// Bumped when the layout changes: instances of two versions may share one Redis during a rolling upgrade, and an
// entry the other version wrote must read as a miss, not as garbage.
const FORMAT = 1;

/** [1-byte format][4-byte big-endian meta length][meta JSON][body]: the body stays binary, unescaped. */
export function encodeEntry(entry: CacheEntry): Buffer {
  const meta = Buffer.from(
    JSON.stringify({
      p: entry.policy.toObject(),
      s: entry.status,
      h: entry.headers,
      e: entry.encodedBy,
      w: entry.rewritten,
    }),
  );
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(FORMAT, 0);
  head.writeUInt32BE(meta.length, 1);
  return Buffer.concat([head, meta, entry.body]);
}

/** The entry `encodeEntry` made, its policy of class `Policy`; throws on anything else (other format, truncated, not ours). */
export function decodeEntry(buf: Buffer, Policy: PolicyClass = CachePolicy): CacheEntry {
  if (buf.length < 5 || buf[0] !== FORMAT) throw new Error('cache entry: unknown format');
  const metaEnd = 5 + buf.readUInt32BE(1);
  if (metaEnd > buf.length) throw new Error('cache entry: truncated');
  const meta: unknown = JSON.parse(buf.toString('utf8', 5, metaEnd));
  if (
    !isObject(meta) ||
    typeof meta.s !== 'number' ||
    !isObject(meta.h) ||
    !isObject(meta.p) ||
    (meta.e !== null && typeof meta.e !== 'string')
  ) {
    throw new Error('cache entry: malformed metadata');
  }
  return {
    policy: Policy.fromObject(meta.p as unknown as CachePolicy.CachePolicyObject),
    status: meta.s,
    headers: meta.h as Record<string, string | string[]>,
    body: buf.subarray(metaEnd),
    encodedBy: meta.e,
    ...(meta.w === true ? { rewritten: true as const } : {}),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** SCAN MATCH treats these as glob syntax; a URL key (or namespace) holding them must match literally. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

export interface RedisCacheStoreOptions {
  /** Isolates one route's cache from the others sharing the Redis. */
  readonly namespace: string;
  /** Each failure (the caller throttles logging). */
  readonly onError: (err: Error) => void;
  /**
   * The class of the policies read back (its clock decides freshness; Redis expires entries on its own, real,
   * time). Default: http-cache-semantics' own.
   */
  readonly Policy?: PolicyClass;
}

export class RedisCacheStore implements CacheStore {
  private readonly client: () => RedisClient | undefined;
  private readonly onError: (err: Error) => void;
  private readonly base: string;
  private readonly Policy: PolicyClass;

  // The client is asked for on each call: a reload may replace the shared client under us.
  constructor(client: () => RedisClient | undefined, options: RedisCacheStoreOptions) {
    this.client = client;
    this.onError = options.onError;
    // Braces in a route name are %-encoded (and so is %): the key's first `{` must be the URL key's hash tag.
    this.base = `tp:cache:${options.namespace.replace(/[%{}]/g, (c) => encodeURIComponent(c))}:`;
    this.Policy = options.Policy ?? CachePolicy;
  }

  async lookup(urlKey: string, variantOf: (varyFields: readonly string[]) => string): Promise<CacheEntry | undefined> {
    try {
      const redis = this.redis();
      const record = await redis.get(this.recordKey(urlKey));
      if (record === null) return undefined;
      const fields: unknown = JSON.parse(record);
      if (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string'))
        throw new Error('cache record: not a list of field names');
      const buf = await redis.getBuffer(this.entryKey(urlKey, variantOf(fields)));
      return buf === null ? undefined : decodeEntry(buf, this.Policy);
    } catch (err) {
      this.onError(asError(err));
      return undefined;
    }
  }

  /** Reads count nothing in Redis: a lookup is already a peek. */
  peek(urlKey: string, variantOf: (varyFields: readonly string[]) => string): Promise<CacheEntry | undefined> {
    return this.lookup(urlKey, variantOf);
  }

  async store(
    urlKey: string,
    varyFields: readonly string[],
    variant: string,
    entry: CacheEntry,
    ttl: number,
  ): Promise<void> {
    const px = Math.ceil(ttl);
    if (!(px > 0)) return; // PX rejects 0 and NaN; such an entry is of no use anyway
    try {
      const keys = [this.recordKey(urlKey), this.entryKey(urlKey, variant), this.setKey(urlKey)];
      await STORE_SCRIPT.run(this.redis(), keys, [JSON.stringify(varyFields), encodeEntry(entry), px, variant]);
    } catch (err) {
      this.onError(asError(err));
    }
  }

  async purge(urlKey: string): Promise<number> {
    try {
      return await this.purgeOne(this.redis(), urlKey);
    } catch (err) {
      throw this.fail(err);
    }
  }

  async purgePrefix(prefix: string): Promise<number> {
    return this.purgeScan(escapeGlob(prefix) + '*', null);
  }

  /**
   * The admin API's purge: every URL key of this namespace that passes `test`. `contains`, a string every passing
   * key holds, narrows the SCAN on the Redis side; `test` decides.
   */
  async purgeMatching(test: (urlKey: string) => boolean, contains?: string): Promise<number> {
    return this.purgeScan(contains === undefined ? '*' : `*${escapeGlob(contains)}*`, test);
  }

  /** Where this store's keys live: stores naming the same place are one cache (purge it once). */
  get place(): string {
    return this.base;
  }

  stats(): { entries: number; bytes: number } {
    return { entries: 0, bytes: 0 };
  }

  /** SCANs this namespace's URL records matching `glob` (after the namespace) and purges those `test` passes. */
  private async purgeScan(glob: string, test: ((urlKey: string) => boolean) | null): Promise<number> {
    const records = this.base + 'u:{';
    const match = escapeGlob(records) + glob;
    let total = 0;
    try {
      const redis = this.redis();
      // A Cluster's keys are spread over its masters: SCAN each of them (before it is ready it knows none, and
      // zero purged would be a lie).
      if (redis instanceof Cluster && redis.status !== 'ready') throw new Error('redis cluster not ready');
      for (const node of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 500);
          cursor = next;
          const urlKeys = keys.map((key) => key.slice(records.length, -1)).filter((k) => test === null || test(k));
          // SCAN may name a key twice, and another worker or instance may purge the same URL at once: the purge
          // of one URL is atomic, so only the first finds its entries and the total stays right.
          const counts = await Promise.all(urlKeys.map((urlKey) => this.purgeOne(redis, urlKey)));
          for (const n of counts) total += n;
        } while (cursor !== '0');
      }
    } catch (err) {
      throw this.fail(err);
    }
    return total;
  }

  private async purgeOne(redis: RedisClient, urlKey: string): Promise<number> {
    const keys = [this.recordKey(urlKey), this.setKey(urlKey)];
    return Number(await PURGE_SCRIPT.run(redis, keys, [this.entryKey(urlKey, '')]));
  }

  // The first `{` of a key is the one before the URL key: its hash tag (up to the first `}`, in the URL key or
  // after it) is the same for the record, set and entries.
  private recordKey(urlKey: string): string {
    return `${this.base}u:{${urlKey}}`;
  }

  private setKey(urlKey: string): string {
    return `${this.base}s:{${urlKey}}`;
  }

  // URL keys never hold a newline (request targets cannot), so the separator keeps URL and variant apart.
  private entryKey(urlKey: string, variant: string): string {
    return `${this.base}v:{${urlKey}}\n${variant}`;
  }

  private redis(): RedisClient {
    const redis = this.client();
    if (redis === undefined) throw new Error('cache store: no Redis client');
    return redis;
  }

  private fail(err: unknown): Error {
    const error = asError(err);
    this.onError(error);
    return error;
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
