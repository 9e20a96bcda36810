// One backend address with its own undici connection pool. Targets are shared between snapshots by key,
// so a reload that keeps an upstream keeps its warm connections.
import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';

// Only the Pool, not undici's index: the index also loads fetch, WebSocket, caches and more, ~13 MB of RSS that
// every gateway process would carry for nothing. undici has no `exports` map, so the path is stable within a major.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
import type { UpstreamConfig } from '../config/schema.ts';

export class Target {
  readonly key: string;
  readonly url: string;
  readonly origin: URL;
  readonly weight: number;
  readonly dispatcher: PoolType;
  /** Requests currently in flight on this target. */
  active: number;

  constructor(key: string, url: string, weight: number, upstream: UpstreamConfig) {
    this.key = key;
    this.url = url;
    this.origin = new URL(url);
    this.weight = weight;
    this.active = 0;
    this.dispatcher = new Pool(this.origin.origin, {
      connections: upstream.keepAlive.connections,
      keepAliveTimeout: upstream.keepAlive.idleTimeout,
      keepAliveMaxTimeout: Math.max(upstream.keepAlive.idleTimeout, 600_000),
      connectTimeout: upstream.timeouts.connect,
      headersTimeout: upstream.timeouts.response,
      bodyTimeout: upstream.timeouts.idle,
      maxHeaderSize: 64 * 1024,
      pipelining: 1,
    });
  }
}

/** The key under which a target's pool is reused across reloads: its URL and everything that shapes the pool. */
export function targetKey(url: string, upstream: UpstreamConfig): string {
  return `${url}|${JSON.stringify(upstream.timeouts)}|${JSON.stringify(upstream.keepAlive)}`;
}
