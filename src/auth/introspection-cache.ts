// A bounded map with a deadline per entry, least recently used evicted first. Both token plugins keep their
// verdicts here (jwt: verified tokens; introspection: answers keyed by a token digest, never the raw token).
import { createHash } from 'node:crypto';

interface Entry<V> {
  value: V;
  /** Date.now() milliseconds after which the entry is gone. */
  expiresAt: number;
}

export class TokenCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly maxEntries: number;

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.map.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, expiresAt: number): void {
    if (expiresAt <= Date.now()) return;
    this.map.delete(key);
    this.map.set(key, { value, expiresAt });
    if (this.map.size > this.maxEntries) {
      // The oldest is first in iteration order.
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }
}

/** The cache key of a token: its SHA-256, so the cache never holds a usable credential. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
