// One backend address with its own undici connection pool. Targets are shared between snapshots by key,
// so a reload that keeps an upstream keeps its warm connections.
import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';

// Only the Pool, not undici's index: the index also loads fetch, WebSocket, caches and more, ~13 MB of RSS that
// every gateway process would carry for nothing. undici has no `exports` map, so the path is stable within a major.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { UpstreamConfig } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
export { targetId } from './target-id.ts';

export class Target {
  /** Identity in the registry and for health state: upstream name, URL and the settings that shape the pool. */
  readonly id: string;
  /** What balancers hash on: the origin, so a ring keeps its shape when unrelated settings change. */
  readonly key: string;
  readonly url: string;
  readonly origin: URL;
  readonly weight: number;
  readonly backup: boolean;
  readonly dispatcher: PoolType;
  /** Requests currently in flight on this target. */
  active: number;
  /** As the active health check last said (true until a check says otherwise). */
  healthy: boolean;
  /** performance.now() when it last turned healthy again (slow start ramps from there); 0 = never down. */
  healthySince: number;

  constructor(id: string, url: string, weight: number, backup: boolean, upstream: UpstreamConfig, configDir: string) {
    this.id = id;
    this.url = url;
    this.origin = new URL(url);
    this.key = this.origin.origin;
    this.weight = weight;
    this.backup = backup;
    this.active = 0;
    this.healthy = true;
    this.healthySince = 0;
    this.dispatcher = new Pool(this.origin.origin, {
      connections: upstream.keepAlive.connections,
      keepAliveTimeout: upstream.keepAlive.idleTimeout,
      keepAliveMaxTimeout: Math.max(upstream.keepAlive.idleTimeout, 600_000),
      connectTimeout: upstream.timeouts.connect,
      headersTimeout: upstream.timeouts.response,
      bodyTimeout: upstream.timeouts.idle,
      maxHeaderSize: 64 * 1024,
      pipelining: 1,
      // HTTP/2 to the target when asked (gRPC): negotiated through ALPN on https:// targets.
      allowH2: upstream.http2,
      // On http:// targets HTTP/2 means prior knowledge (h2c), as gRPC servers usually listen.
      ...(upstream.http2 && this.origin.protocol === 'http:' ? { useH2c: true } : {}),
      ...(upstream.tls ? { connect: upstreamTlsOptions(upstream.tls, configDir) } : {}),
    });
  }
}

/** TLS options for connections to https:// targets: files read once, relative to the config file. */
function upstreamTlsOptions(tls: NonNullable<UpstreamConfig['tls']>, configDir: string): Record<string, unknown> {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(resolve(configDir, file));
    } catch (err) {
      throw new TurnpikeError('TP_TLS_CONFIG', `upstream tls.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return {
    ...(tls.ca ? { ca: read('ca', tls.ca) } : {}),
    ...(tls.cert && tls.key ? { cert: read('cert', tls.cert), key: read('key', tls.key) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
    rejectUnauthorized: !tls.insecureSkipVerify,
  };
}
