// One target of an upstream: origin, weight, health, requests in flight, and the undici pool connecting to it.
// One object per upstream and origin, kept across reloads by the upstream's state (upstream-state.ts); its
// undici pool is replaced only when the settings that shape the pool change, so warm connections survive.
import { createRequire } from 'node:module';
import type { Pool as PoolType } from 'undici';

// Only the Pool, not undici's index: the index also loads fetch, WebSocket, caches and more, ~13 MB of RSS that
// every gateway process would carry for nothing. undici has no `exports` map, so the path is stable within a major.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { UpstreamConfig } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import type { BalancedTarget } from './balancers/balancer.ts';
import { ConnectClock } from './connect-timing.ts';
import { acceptUnaskedContinue } from './interim-responses.ts';
import { stickyToken } from './sticky.ts';

export class Target implements BalancedTarget {
  /** Health identity (upstream|origin, see targetKey): active-check verdicts are kept under it. */
  readonly id: string;
  /** The origin: what balancers hash on and outlier detection tracks. */
  readonly key: string;
  readonly url: string;
  readonly origin: URL;
  /** Names this target in sticky cookies (a hash of the origin). */
  readonly stickyToken: string;
  weight: number;
  backup: boolean;
  /** Requests and WebSocket tunnels in flight on it, across every snapshot (counted by the pool's leases). */
  active = 0;
  /** As the active health check last said (true until a check says otherwise). */
  healthy = true;
  /** performance.now() when it last turned healthy again (slow start ramps from there); 0 = never down. */
  healthySince = 0;
  /** Listed in the config (a reload that drops it drains it), or added at run time (only the API removes it). */
  fromConfig: boolean;
  /** Where it came from: "config", "admin" (the admin API), or a discovery source ("dns srv _http._tcp.orders"). */
  source = 'config';
  /** Out of rotation for good, finishing what it has in flight. */
  draining = false;
  /** Set while draining: called when its last lease ends. */
  onIdle: (() => void) | null = null;
  dispatcher: PoolType;
  /** Tells a try on `dispatcher` whether it got a new connection (a try keeps the clock of the pool it went to). */
  clock: ConnectClock;
  /** The connectionsId `dispatcher` was built for. */
  dispatcherId: string;

  constructor(
    id: string,
    url: string,
    weight: number,
    backup: boolean,
    fromConfig: boolean,
    settings: ConnectionSettings,
  ) {
    this.id = id;
    this.url = url;
    this.origin = new URL(url);
    this.key = this.origin.origin;
    this.stickyToken = stickyToken(this.key);
    this.weight = weight;
    this.backup = backup;
    this.fromConfig = fromConfig;
    this.dispatcherId = settings.id(this.key);
    this.clock = new ConnectClock(connectorOptions(this.origin, settings));
    this.dispatcher = openDispatcher(this.origin, settings, this.clock);
  }

  /** Moves to a new undici pool when `settings` shape it differently; the old one finishes its requests, then closes. */
  connect(settings: ConnectionSettings): void {
    const id = settings.id(this.key);
    if (id === this.dispatcherId) return;
    const old = this.dispatcher;
    this.clock = new ConnectClock(connectorOptions(this.origin, settings));
    this.dispatcher = openDispatcher(this.origin, settings, this.clock);
    this.dispatcherId = id;
    old.close().catch(() => undefined);
  }
}

/** An upstream's undici pool options, read once per config (TLS files at build, so a bad file fails the reload). */
export interface ConnectionSettings {
  readonly id: (origin: string) => string;
  readonly upstream: UpstreamConfig;
  readonly tls: Record<string, unknown> | null;
}

/** What undici's connector is built from (the Pool would build the same from connectTimeout, allowH2, useH2c, connect). */
function connectorOptions(origin: URL, settings: ConnectionSettings): Record<string, unknown> {
  const upstream = settings.upstream;
  return {
    allowH2: upstream.http2,
    ...(upstream.http2 && origin.protocol === 'http:' ? { useH2c: true } : {}),
    timeout: upstream.timeouts.connect,
    ...settings.tls,
  };
}

function openDispatcher(origin: URL, settings: ConnectionSettings, clock: ConnectClock): PoolType {
  const upstream = settings.upstream;
  acceptUnaskedContinue();
  return new Pool(origin.origin, {
    connections: upstream.keepAlive.connections,
    keepAliveTimeout: upstream.keepAlive.idleTimeout,
    keepAliveMaxTimeout: Math.max(upstream.keepAlive.idleTimeout, 600_000),
    headersTimeout: upstream.timeouts.response,
    bodyTimeout: upstream.timeouts.idle,
    // undici refuses a head whose names and values reach maxHeaderSize: the limit itself is allowed.
    maxHeaderSize: upstream.maxResponseHeaderSize + 1,
    pipelining: 1,
    // HTTP/2 to the target when asked (gRPC): negotiated through ALPN on https:// targets (the connector offers
    // it; the Pool reads these to hold requests back while the first connection learns the protocol).
    allowH2: upstream.http2,
    // On http:// targets HTTP/2 means prior knowledge (h2c), as gRPC servers usually listen.
    ...(upstream.http2 && origin.protocol === 'http:' ? { useH2c: true } : {}),
    // TCP and TLS (settings.tls), the connect timeout: undici's own connector, timed for the access log.
    connect: clock.connector,
  });
}

/** TLS options for connections to https:// targets: files read once, relative to the config file. */
export function upstreamTlsOptions(
  tls: NonNullable<UpstreamConfig['tls']>,
  configDir: string,
): Record<string, unknown> {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(resolve(configDir, file));
    } catch (err) {
      throw new TurnpikeError(
        'TP_TLS_CONFIG',
        `upstream tls.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  return {
    ...(tls.ca ? { ca: read('ca', tls.ca) } : {}),
    ...(tls.cert && tls.key ? { cert: read('cert', tls.cert), key: read('key', tls.key) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
    rejectUnauthorized: !tls.insecureSkipVerify,
  };
}
