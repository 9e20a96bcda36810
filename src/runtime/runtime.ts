// The running gateway: the current snapshot, the listeners, reload (build beside, swap, retire) and drain.
import { resolve as resolvePath } from 'node:path';
import { CachePurges } from '../cache/purge-fanout.ts';
import { systemClock, type Clock } from '../clock.ts';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import { ActiveHealthChecker } from '../health/active-checker.ts';
import { checkedTargets } from '../health/checked-targets.ts';
import { AccessLog } from '../observability/access-log.ts';
import {
  CHANNELS,
  newGateway,
  type Gateway,
  type L4SessionEvent,
  type RefusalEvent,
  type RequestEvent,
} from '../observability/events.ts';
import { subscribeGatewayLog } from '../observability/gateway-log.ts';
import type { Tracing } from '../observability/tracing.ts';
import { GatewayMetrics } from '../observability/metrics.ts';
import { configTextHash } from '../observability/metrics-process.ts';
import { DashboardStats, subscribeDashboardStats } from '../observability/dashboard-stats.ts';
import type { RequestContext } from '../request-context.ts';
import { TargetRegistry } from '../upstream/pool.ts';
import type { ListenerHost } from './http-listener.ts';
import { createL4Host, openL4Listener, type L4Host } from './l4-listener.ts';
import { configDirOf, openHttpListener, type OpenListener, type TlsEvents } from './open-listener.ts';
import { MemoryLimitStore } from '../limits/memory-store.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import { RedisClients, type RedisClient } from '../stores/redis-client.ts';
import { DiscoveryLoops } from '../discovery/loops.ts';
import type { WorkerSets } from '../discovery/instance-sets.ts';
import { AcmeManagers } from '../acme/managers.ts';
import { listenerKey, Snapshot, type SnapshotServices } from './snapshot.ts';
import { tcpClaims, type PortClaim } from './port-holders.ts';

export interface ListenerAddress {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export interface RuntimeOptions {
  readonly configFile?: string | undefined;
  /** Where the config came from, for the admin API and turnpike_config_info: the file, or the store URL. */
  readonly configSource?: string | undefined;
  /** The text the first config was parsed from (its hash is reported). */
  readonly configText?: string | undefined;
  /** Run the active health checks here (a single process). Workers get results from their primary instead. */
  readonly activeChecks?: boolean;
  /** Health results known before the first snapshot (a worker started after its primary's probes). */
  readonly initialHealth?: ReadonlyMap<string, boolean>;
  /** Signs sticky cookies of upstreams without their own `secret`; shared by the workers of an instance. */
  readonly stickySecret?: string;
  /** Where `memory` limit counters live: the primary's (over IPC) in a worker; default: this process. */
  readonly limitStore?: RateStore & ConcurrencyStore;
  /** Reaches the other workers' memory caches (a worker); default: this process only. */
  readonly cachePurges?: CachePurges;
  /** The time plugins (cache freshness), upstreams (slow start, breakers, ejections) and health intervals read; default: the system clock. */
  readonly clock?: Clock;
  /** A worker's discovered targets, as its primary resolves them; default: this process runs the discovery loops. */
  readonly discoveredSets?: WorkerSets;
  /** Refuses ports another process listens on (port-holders.ts) before they are bound; none in a worker (its primary checks). */
  readonly portGuard?: (claims: PortClaim[]) => void;
  /** Whether `acme:` listeners order certificates (false: `turnpike test`, where they serve their placeholder). */
  readonly acmeOrders?: boolean;
}

/** How long a drain leaves a kept-alive HTTP/1.1 connection between two requests before closing it. */
const KEEP_ALIVE_GRACE_MS = 1000;

export class Runtime implements ListenerHost {
  current!: Snapshot;
  /** Set by stop(): /readyz answers 503 from here on, through `shutdown.acceptGrace` (still serving) and the drain. */
  stopRequested = false;
  draining = false;
  /** Set once a stop has closed its listening sockets (before, a client told to reconnect could reconnect into one
   *  about to close, and be reset; after, it reaches a --handover successor or is refused cleanly). */
  endingConnections = false;
  readonly configFile: string | undefined;
  /** Where the config came from (a file, an etcd or Redis URL without its password; "inline" for text). */
  readonly configSource: string;
  /** sha256 prefix of the running config's text (undefined when applied without it): comparable across instances. */
  configHash: string | undefined;
  private readonly log: Logger;
  private readonly registry: TargetRegistry;
  private readonly checker: ActiveHealthChecker | null;
  private readonly services: SnapshotServices;
  private readonly redis: RedisClients;
  private readonly throttled = new Map<string, number>();
  private readonly live = new Set<Snapshot>();
  private readonly servers = new Map<string, OpenListener>();
  private readonly tlsEvents: TlsEvents = {
    reloaded: (listener, files) => this.log.info({ listener, files }, 'TLS certificates reloaded'),
    failed: (listener, message) =>
      this.log.error(
        { listener, error: message },
        'TLS certificate change refused; the previous certificate stays in service',
      ),
  };
  /** What L4 listeners need from the runtime: the current snapshot's L4 pools, logging, session counts. */
  readonly gateway: Gateway = newGateway();
  private readonly l4Host: L4Host = createL4Host(
    this.gateway,
    () => this.current,
    (fields, msg) => this.log.info(fields, msg),
  );
  private readonly tunnels = new Set<() => void>();
  private accessLog: AccessLog | null = null;
  /** Spans of this runtime's requests (null: tracing off), for the config's `tracing:` as `tracingKey` says. */
  private tracing: Tracing | null = null;
  private tracingKey = '';
  /** Tracings a reload replaced, until their open requests end and their spans are exported. */
  private readonly retiredTracing = new Set<Tracing>();
  /** The Prometheus metrics while `metrics.enabled` (GET /metrics on the admin listener), or null. */
  metrics: GatewayMetrics | null = null;
  private version = 0;
  /** Objects plugins keep across reloads (memory caches), by key; dropped when a new config no longer asks. */
  private readonly kept = new KeptObjects();
  private stopping: Promise<void> | null = null;
  private readonly discovery: DiscoveryLoops | WorkerSets;
  /** Certificates of https listeners with `acme:`, and the http-01 answers every http listener gives. */
  readonly acme: AcmeManagers;
  private readonly portGuard: ((claims: PortClaim[]) => void) | undefined;

  private constructor(log: Logger, options: RuntimeOptions) {
    this.log = log;
    this.portGuard = options.portGuard;
    this.configFile = options.configFile;
    this.configSource = options.configSource ?? options.configFile ?? 'inline';
    const clock = options.clock ?? systemClock;
    this.registry = new TargetRegistry(
      options.stickySecret ?? randomBytes(32).toString('base64url'),
      options.initialHealth,
      this.gateway,
      clock,
    );
    this.registry.onTargetsChanged = () => this.syncHealthChecks();
    const pools = (upstream: string) => this.current?.upstreams.get(upstream);
    this.discovery =
      options.discoveredSets?.attach(pools) ??
      new DiscoveryLoops({
        pool: pools,
        clock,
        gateway: this.gateway,
        log: { warn: (fields, msg) => this.log.warn(fields, msg), info: (fields, msg) => this.log.info(fields, msg) },
        providerEnv: (config) => ({
          redis: () => this.redisOf(config),
          configDir: configDirOf(this.configFile),
        }),
      });
    this.redis = new RedisClients((err) => this.logThrottled('redis', 'redis store error', { error: err.message }));
    this.acme = new AcmeManagers({
      clock,
      orders: options.acmeOrders ?? true,
      log: { warn: (fields, msg) => this.log.warn(fields, msg), info: (fields, msg) => this.log.info(fields, msg) },
      redis: (config) => this.redisOf(config),
      onOrder: (listener, outcome) => {
        if (CHANNELS.acmeOrder.hasSubscribers) CHANNELS.acmeOrder.publish({ gateway: this.gateway, listener, outcome });
      },
    });
    this.services = {
      warn: (m) => this.log.warn(m),
      redis: (settings) => this.redis.get(settings),
      memory: options.limitStore ?? new MemoryLimitStore(),
      logThrottled: (key, message, fields) => this.logThrottled(key, message, fields),
      keep: (key, make) => this.kept.keep(key, this.version, make),
      cachePurges: options.cachePurges ?? new CachePurges(null),
      clock,
    };
    this.checker =
      options.activeChecks === false
        ? null
        : new ActiveHealthChecker((id, healthy) => this.setTargetHealth(id, healthy), {
            log: (msg, fields) => this.log.warn(fields, msg),
            clock,
          });
  }

  /** The `stores.redis` client of the running config (created on first use); undefined without stores.redis. */
  sharedRedis(): RedisClient | undefined {
    return this.redisOf(this.current.config);
  }

  /** The one client of `config`'s stores.redis, with the settings exactly as the snapshot's plugins ask for it
   *  (a client is replaced when its settings differ: every user must pass the same, configDir included). */
  private redisOf(config: Config): RedisClient | undefined {
    const settings = config.stores.redis;
    return settings ? this.redis.get({ ...settings, configDir: configDirOf(this.configFile) }) : undefined;
  }

  /** The access log is a subscriber of this gateway's request and L4 session ends. */
  private readonly onRequestEnd = (message: unknown): void => {
    const event = message as RequestEvent;
    if (event.gateway === this.gateway) this.accessLog?.write(event.ctx);
  };

  private readonly onL4Close = (message: unknown): void => {
    const event = message as L4SessionEvent;
    if (event.gateway === this.gateway) this.accessLog?.writeL4(event);
  };

  private readonly onRefused = (message: unknown): void => {
    const event = message as RefusalEvent;
    if (event.gateway === this.gateway) this.accessLog?.writeRefusal(event);
  };

  private unsubscribeLog: (() => void) | null = null;
  /** The admin dashboard's last-5-minutes numbers, fed from this gateway's events. */
  readonly dashboardStats = new DashboardStats();
  private unsubscribeStats: (() => void) | null = null;

  static async start(config: Config, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
    const runtime = new Runtime(log, options);
    CHANNELS.requestEnd.subscribe(runtime.onRequestEnd);
    CHANNELS.l4Close.subscribe(runtime.onL4Close);
    CHANNELS.refused.subscribe(runtime.onRefused);
    runtime.unsubscribeLog = subscribeGatewayLog(runtime.gateway, log);
    await runtime.apply(config, options.configText);
    return runtime;
  }

  /** Logs `message` at most once per 10 s per key: a store outage is a line per interval, not per request. */
  private logThrottled(key: string, message: string, fields?: object): void {
    const now = Date.now();
    const last = this.throttled.get(key) ?? 0;
    if (now - last < 10_000) return;
    this.throttled.set(key, now);
    this.log.warn(fields ?? {}, message);
  }

  /** A health check's verdict on a target: the upstream (or every live L4 pool) holding it recomputes its usable set. */
  setTargetHealth(id: string, healthy: boolean): void {
    this.registry.setHealth(id, healthy);
    if (id.startsWith('l4|')) {
      for (const snapshot of this.live)
        for (const pool of snapshot.l4Pools.values()) if (pool.targets.some((t) => t.id === id)) pool.refresh();
    }
  }

  /** The active checks probe the live targets (those added at run time too) and the config's tcp ones. */
  private syncHealthChecks(): void {
    if (this.draining) return; // stopped: an upstream released while draining must not restart the probes
    this.checker?.set(checkedTargets(this.current.config, this.registry.liveTargets()));
  }

  /** This process's memory caches by route (the admin API purges through it). */
  get cachePurges(): CachePurges {
    return this.services.cachePurges;
  }

  trackTunnel(close: () => void): () => void {
    this.tunnels.add(close);
    return () => this.tunnels.delete(close);
  }

  /**
   * Builds a snapshot for `config` beside the current one, opens new listeners, then swaps. Throws and keeps the old
   * one on failure. `text`: what the config was parsed from, when known (its hash is reported).
   */
  async apply(config: Config, text?: string): Promise<void> {
    if (this.draining) throw new TurnpikeError('TP_SHUTTING_DOWN');
    // The OpenTelemetry SDK (~25 MB of heap and code) is loaded only by a config that traces.
    const tracingKey = JSON.stringify(config.tracing ?? null);
    const tracing =
      tracingKey !== this.tracingKey && config.tracing !== undefined && config.tracing.sampleRatio > 0
        ? (await import('../observability/tracing.ts')).Tracing
        : null;
    if (this.draining) throw new TurnpikeError('TP_SHUTTING_DOWN');
    const next = new Snapshot(config, ++this.version, this.configFile, this.registry, this.services);
    // Subscribed before new listeners open, so their connections and certificates are counted from the start.
    const metrics = this.syncMetrics(config);
    const opened: OpenListener[] = [];
    try {
      this.portGuard?.(tcpClaims(config, new Set(this.servers.keys()), false));
      // Before the listeners open: an https listener with acme alone serves its manager's placeholder.
      await this.acme.sync(config, configDirOf(this.configFile));
      for (const [key, listener] of next.listeners) {
        if (this.servers.has(key)) continue;
        opened.push(await openHttpListener(this, key, listener, configDirOf(this.configFile), this.tlsEvents));
      }
      for (const l4 of next.l4Listeners) {
        const key = listenerKey(l4);
        if (this.servers.has(key)) continue;
        opened.push(await openL4Listener(key, l4, this.l4Host, configDirOf(this.configFile)));
      }
    } catch (err) {
      await Promise.all(opened.map((o) => o.close()));
      await this.releaseUnused();
      throw err;
    }
    const previous = this.current as Snapshot | undefined;
    for (const o of opened) this.servers.set(o.key, o);
    for (const [key, open] of this.servers) {
      const listener = next.listeners.get(key);
      if (listener) open.update(listener, configDirOf(this.configFile));
    }
    // A file path is relative to the config file's folder, as every path in the config.
    const output =
      config.accessLog.output === 'stdout' || config.accessLog.output === 'stderr'
        ? config.accessLog.output
        : resolvePath(configDirOf(this.configFile), config.accessLog.output);
    if (this.accessLog === null || this.accessLog.output !== (config.accessLog.enabled ? output : 'off')) {
      const old = this.accessLog;
      this.accessLog = new AccessLog({ enabled: config.accessLog.enabled, output }, config.accessLog, {
        error: (fields, message) => this.log.error(fields, message),
        info: (fields, message) => this.log.info(fields, message),
      });
      void old?.close();
    } else {
      this.accessLog.configure(config.accessLog);
    }
    // A changed `tracing:` gets a new tracer provider; the old one finishes the requests it started.
    if (tracingKey !== this.tracingKey) {
      const old = this.tracing;
      this.tracing = tracing?.start(this.gateway, config.tracing, (fields, msg) => this.log.warn(fields, msg)) ?? null;
      this.tracingKey = tracingKey;
      if (old !== null) {
        this.retiredTracing.add(old);
        void old.retire().then(() => this.retiredTracing.delete(old));
      }
    }
    // Upstream state (breakers, ejections, targets) is kept across the swap; the new config's settings apply now.
    this.registry.commit(next.upstreams.values());
    this.current = next;
    // Discovery feeds the pools of the snapshot now current; loops whose block did not change keep running.
    this.discovery.sync(config);
    this.acme.run();
    this.configHash = text === undefined ? undefined : configTextHash(text);
    metrics?.configure(config, { source: this.configSource, hash: this.configHash ?? '' });
    // The dashboard's numbers cost a little per request: kept only while an admin listener can show them (a worker
    // reads its primary's admin config too); a reload may add or remove it.
    if (config.admin === undefined) {
      this.unsubscribeStats?.();
      this.unsubscribeStats = null;
    } else this.unsubscribeStats ??= subscribeDashboardStats(this.gateway, this.dashboardStats);
    this.kept.sweep(next.version);
    this.live.add(next);
    this.syncHealthChecks();
    // Listeners the new config dropped stop accepting; their open requests finish.
    const keep = new Set([...next.listeners.keys(), ...next.l4Listeners.map(listenerKey)]);
    for (const [key, open] of this.servers) {
      if (keep.has(key)) continue;
      this.servers.delete(key);
      void open.close().then(() => open.closeIdle());
    }
    if (previous) this.retire(previous);
    for (const o of opened)
      this.log.info({ listener: o.name, address: o.address.address, port: o.address.port }, 'listening');
  }

  /**
   * Starts the metrics when the config asks for them, stops them when it no longer does; new histogram
   * buckets start the series afresh (a scrape sees a counter reset, which Prometheus handles).
   */
  private syncMetrics(config: Config): GatewayMetrics | null {
    const wanted = config.metrics?.enabled === true ? config.metrics : null;
    const current = this.metrics;
    if (current !== null && (wanted === null || current.buckets.join() !== wanted.buckets.join())) {
      current.stop();
      this.metrics = null;
    }
    if (wanted !== null && this.metrics === null) {
      this.metrics = new GatewayMetrics(this.gateway, {
        buckets: wanted.buckets,
        inFlight: () => this.inFlight,
        targets: () => this.targetHealth(),
      });
      this.metrics.start();
    }
    return this.metrics;
  }

  /** Each target in service (the upstreams' live ones, the current L4 pools') with its health verdict. */
  private *targetHealth(): Generator<{ id: string; healthy: boolean }> {
    for (const t of this.registry.liveTargets()) yield { id: t.id, healthy: this.registry.healthOf(t.id) ?? true };
    // Scraped during the first apply, before there is a snapshot: no L4 pools yet.
    for (const pool of (this.current as Snapshot | undefined)?.l4Pools.values() ?? [])
      for (const t of pool.targets) yield { id: t.id, healthy: this.registry.healthOf(t.id) ?? true };
  }

  /** Once every request that started on `old` has finished, the upstreams no live snapshot has are drained. */
  private retire(old: Snapshot): void {
    old.retired = true;
    const done = () => {
      old.onDrained = null;
      this.live.delete(old);
      old.closeTerminals();
      void this.releaseUnused();
    };
    if (old.inFlight === 0) done();
    else old.onDrained = done;
  }

  private async releaseUnused(): Promise<void> {
    const pools = [];
    for (const s of this.live) pools.push(...s.upstreams.values());
    await this.registry.release(pools);
  }

  /** Opens the access-log file again under its name (SIGUSR1, after logrotate moved it). */
  reopenLogs(): void {
    this.accessLog?.reopen();
    this.log.info({ output: this.accessLog?.output ?? 'off' }, 'log files reopened');
  }

  addresses(): ListenerAddress[] {
    const out: ListenerAddress[] = [];
    for (const open of this.servers.values())
      out.push({ name: open.name, address: open.address.address, port: open.address.port });
    return out;
  }

  get inFlight(): number {
    let n = 0;
    for (const s of this.live) n += s.inFlight;
    return n;
  }

  /**
   * Says not ready at once, keeps serving for `acceptGrace` (a balancer health-checking /readyz takes the instance
   * out meanwhile, so no new connection lands on a closing socket), then stops accepting, lets in-flight requests
   * finish (up to the drain timeout) and closes everything.
   */
  stop(
    drainTimeout = this.current?.config.shutdown.drainTimeout ?? 30_000,
    acceptGrace = this.current?.config.shutdown.acceptGrace ?? 0,
  ): Promise<void> {
    this.stopping ??= this.graceThenDrain(drainTimeout, acceptGrace);
    return this.stopping;
  }

  private async graceThenDrain(drainTimeout: number, acceptGrace: number): Promise<void> {
    this.stopRequested = true;
    if (acceptGrace > 0) {
      this.log.info({ acceptGrace }, 'not ready; still serving for shutdown.acceptGrace');
      await new Promise((r) => setTimeout(r, acceptGrace));
    }
    await this.drainAndClose(drainTimeout);
  }

  private async drainAndClose(drainTimeout: number): Promise<void> {
    this.draining = true;
    this.unsubscribeLog?.();
    this.unsubscribeStats?.();
    this.checker?.stop();
    this.discovery.stopAll();
    this.acme.stopAll();
    const servers = [...this.servers.values()];
    // Every connection the kernel accepted is taken and answered (a request arriving now gets Connection: close).
    await Promise.all(servers.map((o) => o.close()));
    // From here a request is answered with Connection: close (not before: in a handover, a client told to reconnect
    // while this process's listening sockets still took connections could land in a queue about to be dropped).
    this.endingConnections = true;
    this.log.info({ inFlight: this.inFlight }, 'listeners closed');
    const start = Date.now();
    const deadline = start + drainTimeout;
    // A connection that has not sent its request yet is waited for as long as the listener waits for any request
    // head: its client may have sent it already, and closing now would reset it.
    let headerTimeout = 0;
    for (const l of this.current.listeners.values()) headerTimeout = Math.max(headerTimeout, l.headerTimeout);
    const quietDeadline = start + Math.min(drainTimeout, headerTimeout);
    const busy = () =>
      this.inFlight > 0 ||
      this.tunnels.size > 0 ||
      this.l4Host.active() > 0 ||
      (Date.now() < quietDeadline && servers.some((o) => o.connections() > 0));
    // An idle kept-alive HTTP/1.1 connection may have its next request on the wire (closing it would reset that):
    // one in use is answered with Connection: close within the grace; one still idle after it was parked. HTTP/2
    // gets GOAWAY at once (it names the last stream served).
    const parkedAfter = Date.now() + KEEP_ALIVE_GRACE_MS;
    while (busy() && Date.now() < deadline) {
      for (const o of servers) o.closeIdle(Date.now() < parkedAfter);
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const close of [...this.tunnels]) close();
    for (const o of servers) o.closeAll();
    this.servers.clear();
    for (const s of this.live) s.closeTerminals();
    await this.registry.closeAll(this.inFlight > 0);
    await this.accessLog?.close();
    this.accessLog = null;
    // Every request has ended: their spans are exported now (bounded by the export timeout).
    await Promise.all([this.tracing?.close(), ...[...this.retiredTracing].map((t) => t.close())]);
    this.tracing = null;
    CHANNELS.requestEnd.unsubscribe(this.onRequestEnd);
    CHANNELS.l4Close.unsubscribe(this.onL4Close);
    CHANNELS.refused.unsubscribe(this.onRefused);
    this.metrics?.stop();
    this.redis.close();
  }
}

class KeptObjects {
  private readonly objects = new Map<string, { value: unknown; usedBy: number }>();

  keep<T>(key: string, version: number, make: () => T): T {
    let kept = this.objects.get(key);
    if (kept === undefined) {
      kept = { value: make(), usedBy: version };
      this.objects.set(key, kept);
    }
    kept.usedBy = version;
    return kept.value as T;
  }

  /** Forgets what the config of `version` did not ask for. */
  sweep(version: number): void {
    for (const [key, kept] of this.objects) if (kept.usedBy < version) this.objects.delete(key);
  }
}
