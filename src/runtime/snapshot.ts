// Everything a config implies, compiled once: router, each route's plugin chain and terminal, upstream pools.
// A snapshot is immutable; a reload builds a new one beside it and swaps one reference.
import type { CachePurges } from '../cache/purge-fanout.ts';
import type { CacheStore } from '../cache/store.ts';
import type { Clock } from '../clock.ts';
import { dirname } from 'node:path';
import type {
  HttpListenerConfig,
  HttpsListenerConfig,
  TcpListenerConfig,
  UdpListenerConfig,
} from '../config/listener-schema.ts';
import { ROUTE_TERMINALS, type Config, type ListenerConfig, type RouteConfig } from '../config/schema.ts';
import { upstreamKind } from '../config/upstream-schema.ts';
import { L4Pool } from '../upstream/l4-pool.ts';
import { compileChain, type Chain } from '../pipeline/chain.ts';
import { loadErrorPages, type ErrorPages } from '../pipeline/error-pages.ts';
import { compileFallback, withFallback } from '../pipeline/fallback.ts';
import { PLUGINS } from '../plugins/registry.ts';
import type { PluginEnv } from '../plugins/types.ts';
import { ProxyTrust } from '../proxy/client-ip.ts';
import type { UnderscoreHeaders } from '../proxy/request-head.ts';
import type { H2GuardLimits } from './h2-frame-guard.ts';
import type { PathPolicy } from './url-path.ts';
import { TERMINALS } from '../terminals/registry.ts';
import type { Terminal } from '../terminals/terminal.ts';
import { ConsumerDirectory } from '../auth/consumers.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import type { RedisClient, RedisSettings } from '../stores/redis-client.ts';
import { Router } from '../routing/router.ts';
import { compileDeprecation, type CompiledDeprecation } from './route-versions.ts';
import type { TargetRegistry, UpstreamPool } from '../upstream/pool.ts';

export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly chain: Chain;
  readonly maxBodySize: number;
  readonly terminal: Terminal;
  /** `protocol: grpc`: errors answered as gRPC statuses even for requests without a gRPC content type. */
  readonly grpc: boolean;
  readonly requireClientCert: boolean;
  /** `upgrades:` besides WebSocket, lower case; null when none. */
  readonly upgrades: ReadonlySet<string> | null;
  /** `deprecated:`: headers for every answer and the sunset (410 after it), or null. */
  readonly deprecation: CompiledDeprecation | null;
}

export interface CompiledListener {
  readonly key: string;
  readonly config: HttpListenerConfig | HttpsListenerConfig;
  readonly trust: ProxyTrust;
  readonly scheme: 'http' | 'https';
  readonly maxHeaderSize: number;
  readonly headerTimeout: number;
  readonly keepAliveTimeout: number;
  /** Node's server-wide request timeout: the largest of the global and per-route values. */
  readonly requestTimeout: number;
  /** Header carrying the verified client certificate upstream (https with clientAuth.forwardHeader), or null. */
  readonly clientCertHeader: string | null;
  /** https with clientAuth: a request whose Host is not the TLS server name gets 421 (the certificate was
   *  checked for the connection's name, not for the one the request asks for). */
  readonly sniMustMatchHost: boolean;
  /** Strict-Transport-Security value for every response of an https listener, or null. */
  readonly hsts: string | null;
  /** A plain listener answering everything with a 308 to https on this port (0: off). */
  readonly redirectToHttps: number;
  readonly underscoreHeaders: UnderscoreHeaders;
  /** The HTTP/2 frame guard's bounds (one object per listener, shared by its connections). */
  readonly h2: H2GuardLimits;
  /** An HTTP/2 stream idle this long is reset (ms). */
  readonly h2StreamIdleTimeout: number;
  /** Header fields an HTTP/1.1 request may carry (431 past it). */
  readonly maxHeaderCount: number;
  /** Bytes of the request target (414 past it). */
  readonly maxUriLength: number;
  readonly maxConnections: number;
  /** 0: no limit. */
  readonly maxConnectionsPerClient: number;
  /** 0: no limit. */
  readonly maxRequestsPerConnection: number;
  readonly pathPolicy: PathPolicy;
}

/** `maxAge` in milliseconds (a config duration); the header counts whole seconds. */
function hstsValue(h: { maxAge: number; includeSubDomains: boolean; preload: boolean }): string {
  const seconds = Math.floor(h.maxAge / 1000);
  return `max-age=${seconds}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}

/** What a snapshot gets from the runtime that outlives it: shared stores and logging. */
export interface SnapshotServices {
  readonly warn: (message: string) => void;
  readonly redis: (settings: RedisSettings) => RedisClient;
  readonly memory: RateStore & ConcurrencyStore;
  readonly logThrottled: (key: string, message: string, fields?: object) => void;
  /** An object that outlives this snapshot while later configs keep asking for the same key (a memory cache). */
  readonly keep: <T>(key: string, make: () => T) => T;
  readonly cachePurges: CachePurges;
  readonly clock: Clock;
}

export function listenerKey(l: ListenerConfig): string {
  // Port 0 listeners are told apart by name (each gets its own ephemeral port).
  return `${l.protocol}|${l.address}|${l.port}${l.port === 0 ? `|${l.name}` : ''}`;
}

export class Snapshot {
  readonly config: Config;
  readonly version: number;
  readonly routes: readonly CompiledRoute[];
  /**
   * The global plugins alone: they run for requests no route matches and for answers the gateway gives before
   * routing (a 404 carries CORS and security headers; a global authentication answers 401 before a 404).
   */
  readonly globalChain: Chain;
  /** HTML pages for the gateway's own errors (`errorPages`), read at load; null without them. */
  readonly errorPages: ErrorPages | null;
  readonly router: Router<CompiledRoute>;
  /** The runtime's clock (a deprecated route's sunset is read on it). */
  readonly clock: Clock;
  /** Whether any route lists `upgrades:` (else only WebSocket upgrades are looked at). */
  readonly otherUpgrades: boolean;
  readonly upstreams: ReadonlyMap<string, UpstreamPool>;
  readonly listeners: ReadonlyMap<string, CompiledListener>;
  /** Upstreams of tcp:// or udp:// targets, for the L4 listeners. */
  readonly l4Pools: ReadonlyMap<string, L4Pool>;
  /** TCP and UDP listeners: served by the L4 proxies, outside routing. */
  readonly l4Listeners: readonly (TcpListenerConfig | UdpListenerConfig)[];
  readonly requestIdHeader: string;
  readonly echoRequestId: string | null;
  /** Header names that carry the consumer upstream (client-sent copies are always removed). */
  readonly consumerHeaders: { readonly name: string; readonly groups: string };
  /**
   * The Redis caches this config's plugins use, by place (the admin API's purge; see PluginEnv). Per snapshot, not
   * in CachePurges' index: a retired config's store would ask for its own Redis settings (replacing the client).
   */
  readonly sharedCaches = new Map<string, CacheStore>();
  /** Requests that started on this snapshot and have not finished. */
  inFlight = 0;
  retired = false;
  onDrained: (() => void) | null = null;

  constructor(
    config: Config,
    version: number,
    configFile: string | undefined,
    registry: TargetRegistry,
    services: SnapshotServices,
  ) {
    this.config = config;
    this.version = version;
    this.clock = services.clock;
    this.requestIdHeader = config.requestId.header;
    this.echoRequestId = config.requestId.echo ? config.requestId.header : null;
    this.consumerHeaders = config.consumerHeaders;
    const configDir = configFile ? dirname(configFile) : process.cwd();
    // Its tls files are relative to the config file, as every other file the config names.
    const redisSettings = config.stores.redis && { ...config.stores.redis, configDir };
    const upstreams = new Map<string, UpstreamPool>();
    const env: PluginEnv = {
      configDir,
      warn: services.warn,
      consumers: new ConsumerDirectory(config.consumers),
      redis: () => (redisSettings ? services.redis(redisSettings) : undefined),
      memoryRates: services.memory,
      memoryConcurrency: services.memory,
      logThrottled: services.logThrottled,
      keep: services.keep,
      cachePurges: services.cachePurges,
      sharedCaches: this.sharedCaches,
      clock: services.clock,
      routeName: '',
      routeProtocol: 'http',
      maxBodySize: config.limits.maxBodySize,
      // Filled below, before any route is compiled.
      upstreams,
      gatewayHeaders: {
        requestIdHeader: this.requestIdHeader,
        consumerNameHeader: this.consumerHeaders.name,
        consumerGroupsHeader: this.consumerHeaders.groups,
      },
    };

    const l4Pools = new Map<string, L4Pool>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      // tcp:// and udp:// upstreams serve L4 listeners; they hold no HTTP connection pool.
      if (upstreamKind(upstream) === 'http') {
        upstreams.set(name, registry.build(name, upstream, env.configDir));
        if (upstream.tls?.insecureSkipVerify)
          services.warn(`upstream "${name}": tls.insecureSkipVerify is on: its targets' certificates are not verified`);
      } else l4Pools.set(name, new L4Pool(name, upstream, (id) => registry.healthOf(id)));
    }
    this.l4Pools = l4Pools;
    this.upstreams = upstreams;
    this.l4Listeners = config.listeners.filter(
      (l): l is TcpListenerConfig | UdpListenerConfig => l.protocol === 'tcp' || l.protocol === 'udp',
    );

    this.errorPages = loadErrorPages(config.errorPages, env.configDir);
    this.routes = config.routes.map((route, index) => this.compileRoute(route, index, env));
    this.globalChain = {
      ...compileChain(PLUGINS, config.plugins, [], { ...env, routeName: '(no route)' }, this.echoRequestId),
      errorPages: this.errorPages,
    };
    this.router = new Router(
      this.routes.map((value) => ({ match: config.routes[value.index]!.match, value })),
      { caseSensitive: config.limits.caseSensitivePaths, versioning: config.versioning },
    );
    this.otherUpgrades = this.routes.some((r) => r.upgrades !== null);

    const maxRequestTimeout = Math.max(
      config.limits.requestTimeout,
      ...config.routes.map((r) => r.limits?.requestTimeout ?? 0),
    );
    this.listeners = new Map(
      config.listeners
        .filter((l) => l.protocol === 'http' || l.protocol === 'https')
        .map((l) => {
          const key = listenerKey(l);
          return [
            key,
            {
              key,
              config: l,
              trust: new ProxyTrust(l.trustedProxies),
              scheme: l.protocol,
              clientCertHeader: l.protocol === 'https' ? (l.tls?.clientAuth?.forwardHeader ?? null) : null,
              sniMustMatchHost: l.protocol === 'https' && (l.tls?.clientAuth?.mode ?? 'off') !== 'off',
              hsts: l.protocol === 'https' && l.hsts ? hstsValue(l.hsts) : null,
              redirectToHttps:
                l.protocol === 'http' && l.redirectToHttps !== false
                  ? l.redirectToHttps === true
                    ? 443
                    : l.redirectToHttps
                  : 0,
              maxHeaderSize: l.limits?.maxHeaderSize ?? config.limits.maxHeaderSize,
              headerTimeout: l.limits?.headerTimeout ?? config.limits.headerTimeout,
              keepAliveTimeout: l.limits?.keepAliveTimeout ?? config.limits.keepAliveTimeout,
              underscoreHeaders: l.limits?.headersWithUnderscores ?? config.limits.headersWithUnderscores,
              maxHeaderCount: l.limits?.maxHeaderCount ?? config.limits.maxHeaderCount,
              maxUriLength: l.limits?.maxUriLength ?? config.limits.maxUriLength,
              pathPolicy: {
                mergeSlashes: l.limits?.mergeSlashes ?? config.limits.mergeSlashes,
                escapedSlashes: l.limits?.escapedSlashes ?? config.limits.escapedSlashes,
                pathParameters: (l.limits?.pathParameters ?? config.limits.pathParameters) === 'allow',
              },
              requestTimeout: maxRequestTimeout,
              h2: {
                // nghttp2 checks the decoded list exactly; the guard only bounds what a block may buffer.
                maxHeaderBlock: (l.limits?.maxHeaderSize ?? config.limits.maxHeaderSize) + 16_384,
                maxConcurrentStreams: l.limits?.h2MaxConcurrentStreams ?? config.limits.h2MaxConcurrentStreams,
                maxResetsPerSecond: l.limits?.h2MaxResetsPerSecond ?? config.limits.h2MaxResetsPerSecond,
                maxControlFramesPerSecond:
                  l.limits?.h2MaxControlFramesPerSecond ?? config.limits.h2MaxControlFramesPerSecond,
              },
              h2StreamIdleTimeout: l.limits?.h2StreamIdleTimeout ?? config.limits.h2StreamIdleTimeout,
              maxConnections: l.limits?.maxConnections ?? config.limits.maxConnections,
              maxConnectionsPerClient: l.limits?.maxConnectionsPerClient ?? config.limits.maxConnectionsPerClient,
              maxRequestsPerConnection: l.limits?.maxRequestsPerConnection ?? config.limits.maxRequestsPerConnection,
            },
          ];
        }),
    );
  }

  /**
   * Once no request runs on this snapshot: what its terminals hold of their own (gRPC channels) is released, and
   * what its plugins started on their own (mirror copies) is given up.
   */
  closeTerminals(): void {
    for (const r of this.routes) {
      r.terminal.close?.();
      for (const close of r.chain.close) close();
    }
    for (const close of this.globalChain.close) close();
  }

  private compileRoute(route: RouteConfig, index: number, env: PluginEnv): CompiledRoute {
    const config = this.config;
    const name = route.name ?? `routes[${index}]`;
    const maxBodySize = route.limits?.maxBodySize ?? config.limits.maxBodySize;
    const chain = {
      ...compileChain(
        PLUGINS,
        config.plugins,
        route.plugins,
        { ...env, routeName: name, routeProtocol: route.protocol, maxBodySize },
        this.echoRequestId,
      ),
      errorPages: this.errorPages,
    };
    const requestTimeout = route.limits?.requestTimeout ?? config.limits.requestTimeout;
    const key = Object.keys(ROUTE_TERMINALS).find((k) => route[k as keyof typeof ROUTE_TERMINALS] !== undefined)!;
    const compiled = TERMINALS.get(key)!.compile(route[key as keyof typeof ROUTE_TERMINALS], {
      routeName: name,
      route,
      configDir: env.configDir,
      chain,
      maxBodySize,
      requestTimeout,
      clientBodyTimeout: route.limits?.bodyTimeout ?? config.limits.bodyTimeout,
      sendTimeout: route.limits?.sendTimeout ?? config.limits.sendTimeout,
      upstreams: this.upstreams,
      requestIdHeader: this.requestIdHeader,
      consumerHeaders: this.consumerHeaders,
    });
    const terminal =
      route.fallback === undefined
        ? compiled
        : withFallback(compiled, compileFallback(route.fallback, this.upstreams.get(compiled.upstreamName) ?? null));
    return {
      name,
      index,
      chain,
      maxBodySize,
      terminal,
      grpc: route.protocol === 'grpc',
      requireClientCert: route.requireClientCert,
      upgrades: route.upgrades.length > 0 ? new Set(route.upgrades) : null,
      deprecation: compileDeprecation(route.deprecated),
    };
  }
}
