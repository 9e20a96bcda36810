// Prometheus metrics as a subscriber of the event stream: one prom-client Registry per runtime (never the
// global one), fed by this gateway's events only. Per-request series are resolved once per route, method and
// status class (metrics-series.ts) and cost a few additions per request; state gauges (breakers,
// certificates, config) are set when their event arrives, target health is read from the runtime at scrape time. Label values are bounded: route and upstream names
// come from the config, targets from the config or discovery, methods from a fixed list; a request no route
// matched is counted under route="(no route)".
import { Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { MetricsScrape, MetricsSource } from './metrics-source.ts';
import type { RequestContext } from '../request-context.ts';
import {
  CHANNELS,
  subscribeAll,
  type CertificatesEvent,
  type ConnectionEvent,
  type Gateway,
  type L4SessionEvent,
  type Subscriptions,
} from './events.ts';
import { formatMetrics, OPENMETRICS_TEXT, PROMETHEUS_TEXT, wantsOpenMetrics } from './metrics-format.ts';
import {
  BREAKER_VALUE,
  METHOD_INDEX,
  METHODS,
  NO_ROUTE,
  OTHER_METHOD,
  originOf,
  outcomeOf,
  STATUS_CLASSES,
  statusClass,
  targetLabels,
  versionLabels,
  NO_VERSION,
  OTHER_VERSION,
} from './metrics-labels.ts';
import { BUILD_VERSION, configVersion, processRegistry } from './metrics-process.ts';
import { discoveryMetrics } from './metrics-discovery.ts';
import { acmeMetrics } from './metrics-acme.ts';
import { CounterChild, CounterFamily, HistogramChild, HistogramFamily } from './metrics-series.ts';
import { mirrorMetrics } from './metrics-mirror.ts';

export { NO_ROUTE } from './metrics-labels.ts';
export { configVersion } from './metrics-process.ts';

export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A route's series, made at its first request. */
class RouteSeries {
  readonly duration: HistogramChild;
  readonly bytesIn: CounterChild;
  readonly bytesOut: CounterChild;
  /** By method index * 6 + status class. */
  readonly requests: (CounterChild | undefined)[] = [];
  /** With versioning: the same, by version label. */
  readonly byVersion = new Map<string, (CounterChild | undefined)[]>();
  readonly cache = new Map<string, CounterChild>();
  readonly decisions = new Map<string, CounterChild>();
  readonly route: string;

  constructor(m: GatewayMetrics, route: string) {
    this.route = route;
    this.duration = m.requestDuration.child(route, { route });
    this.bytesIn = m.bytesReceived.child(route, { route });
    this.bytesOut = m.bytesSent.child(route, { route });
  }
}

/** An upstream's series; its targets' are made at their first attempt. */
class UpstreamSeries {
  readonly duration: HistogramChild;
  readonly retries: CounterChild;
  /** By target URL: the children by outcome. */
  readonly targets = new Map<string, Map<string, CounterChild>>();
  constructor(m: GatewayMetrics, upstream: string) {
    this.duration = m.upstreamDuration.child(upstream, { upstream });
    this.retries = m.retries.child(upstream, { upstream });
  }
}

export interface MetricsOptions {
  readonly buckets: readonly number[];
  /** Requests being served now, read at scrape time (the runtime's count: no event per request start). */
  readonly inFlight: () => number;
  /**
   * Every target in service now with its health verdict (healthy until a check says otherwise), read at scrape
   * time: a target shows 1 before any verdict, one added at run time appears, one a reload removed leaves.
   */
  readonly targets?: () => Iterable<{ readonly id: string; readonly healthy: boolean }>;
}

export class GatewayMetrics implements MetricsSource {
  readonly registry = new Registry();
  readonly buckets: readonly number[];
  readonly requests: CounterFamily;
  readonly requestDuration: HistogramFamily;
  readonly bytesReceived: CounterFamily;
  readonly bytesSent: CounterFamily;
  readonly upstreamRequests: CounterFamily;
  readonly upstreamDuration: HistogramFamily;
  readonly retries: CounterFamily;
  readonly rateLimitDecisions: CounterFamily;
  readonly cacheRequests: CounterFamily;
  readonly l4Sessions: CounterFamily;
  readonly reloads: CounterFamily;
  private readonly breakerState: Gauge<'upstream'>;
  private readonly configInfo: Gauge<'version' | 'source' | 'hash'>;
  private readonly certificateExpiry: Gauge<'listener' | 'name'>;
  private readonly inFlight: () => number;
  /** Open connections by listener and protocol (HTTP connections and L4 sessions). */
  private readonly connections = new Map<string, { listener: string; protocol: string; open: number }>();
  private readonly routes = new Map<string, RouteSeries>();
  /** With `versioning:`, the versions routes name (and the default): the bound of the `version` label. */
  private versions: ReadonlySet<string> | null = null;
  private readonly upstreams = new Map<string, UpstreamSeries>();
  private readonly certificateNames = new Map<string, string[]>();
  private readonly gateway: Gateway;
  private readonly mirrorDropped: Subscriptions[number];
  private readonly discoveryErrors: Subscriptions[number];
  private readonly acmeOrders: Subscriptions[number];
  /** Set while subscribed. */
  private unsubscribe: (() => void) | null = null;

  constructor(gateway: Gateway, options: MetricsOptions) {
    this.gateway = gateway;
    this.buckets = options.buckets;
    this.inFlight = options.inFlight;
    const r = this.registry;
    this.mirrorDropped = mirrorMetrics(r, gateway);
    this.discoveryErrors = discoveryMetrics(r, gateway);
    this.acmeOrders = acmeMetrics(r, gateway);
    this.requests = new CounterFamily(
      'turnpike_requests_total',
      'HTTP requests by route, method and status class (and API version with versioning:)',
      r,
    );
    this.requestDuration = new HistogramFamily(
      'turnpike_request_duration_seconds',
      'Time from the request head to the end of the exchange, by route',
      r,
      options.buckets,
    );
    this.bytesReceived = new CounterFamily('turnpike_bytes_received_total', 'Request body bytes received, by route', r);
    this.bytesSent = new CounterFamily('turnpike_bytes_sent_total', 'Response body bytes sent, by route', r);
    this.upstreamRequests = new CounterFamily(
      'turnpike_upstream_requests_total',
      'Tries against upstream targets, by outcome (status class, connect_error, timeout, reset, cancelled)',
      r,
    );
    this.upstreamDuration = new HistogramFamily(
      'turnpike_upstream_duration_seconds',
      'Duration of one try against an upstream target, by upstream',
      r,
      options.buckets,
    );
    this.retries = new CounterFamily('turnpike_retries_total', 'Retries scheduled, by upstream', r);
    this.rateLimitDecisions = new CounterFamily(
      'turnpike_rate_limit_decisions_total',
      'Rate limit decisions by route (allowed, denied, error: the store failed)',
      r,
    );
    this.cacheRequests = new CounterFamily(
      'turnpike_cache_requests_total',
      'Cache decisions by route (HIT, MISS, STALE, BYPASS, REVALIDATED)',
      r,
    );
    this.l4Sessions = new CounterFamily('turnpike_l4_sessions_total', 'TCP connections and UDP client mappings', r);
    // Every worker reloads when the instance does: the primary shows one worker's count, not the sum.
    this.reloads = new CounterFamily(
      'turnpike_config_reloads_total',
      'Config reloads by result (success, failure)',
      r,
      'max',
    );
    for (const result of ['success', 'failure']) this.reloads.child(result, { result });
    const metrics = this;
    new Gauge({
      name: 'turnpike_requests_in_flight',
      help: 'HTTP requests being served',
      registers: [r],
      collect() {
        this.set(metrics.inFlight());
      },
    });
    new Gauge({
      name: 'turnpike_connections',
      help: 'Open client connections (L4: sessions), by listener and protocol',
      labelNames: ['listener', 'protocol'],
      registers: [r],
      collect() {
        for (const c of metrics.connections.values()) this.set({ listener: c.listener, protocol: c.protocol }, c.open);
      },
    });
    this.breakerState = new Gauge({
      name: 'turnpike_circuit_breaker_state',
      help: 'Circuit breaker state by upstream: 0 closed, 1 open, 2 half-open',
      labelNames: ['upstream'],
      registers: [r],
      aggregator: 'max',
    });
    const targets = options.targets ?? (() => []);
    new Gauge({
      name: 'turnpike_target_healthy',
      help: 'Health verdict of a target: 1 healthy, 0 unhealthy',
      labelNames: ['upstream', 'target'],
      registers: [r],
      aggregator: 'first',
      collect() {
        this.reset();
        for (const t of targets()) {
          const labels = targetLabels(t.id);
          if (labels !== null) this.set(labels, t.healthy ? 1 : 0);
        }
      },
    });
    this.configInfo = new Gauge({
      name: 'turnpike_config_info',
      help: 'The running config: version is a hash of it, source where it came from, hash a hash of its text',
      labelNames: ['version', 'source', 'hash'],
      registers: [r],
      aggregator: 'first',
    });
    new Gauge({
      name: 'turnpike_build_info',
      help: 'The Turnpike and Node.js versions',
      labelNames: ['version', 'node'],
      registers: [r],
      aggregator: 'first',
    }).set({ version: BUILD_VERSION, node: process.versions.node }, 1);
    this.certificateExpiry = new Gauge({
      name: 'turnpike_certificate_expiry_seconds',
      help: 'When a served certificate expires (Unix time, seconds), by listener and certificate name',
      labelNames: ['listener', 'name'],
      registers: [r],
      aggregator: 'first',
    });
  }

  /** Subscribes to this gateway's events. */
  start(): void {
    if (this.unsubscribe !== null) return;
    const gateway = this.gateway;
    const own = (m: unknown) => (m as { gateway?: Gateway }).gateway === gateway;
    const subscriptions: Subscriptions = [
      [
        CHANNELS.requestEnd,
        (m) => {
          if (own(m)) this.requestEnded((m as { ctx: RequestContext }).ctx);
        },
      ],
      [
        CHANNELS.attemptEnd,
        (m) => {
          if (own(m)) this.attemptEnded(m as AttemptEnd);
        },
      ],
      [
        CHANNELS.retry,
        (m) => {
          if (own(m)) this.upstream((m as { ctx: RequestContext }).ctx.upstreamName).retries.value++;
        },
      ],
      [
        CHANNELS.rateLimit,
        (m) => {
          if (!own(m)) return;
          const e = m as { ctx: RequestContext; allowed: boolean; storeError?: string };
          const decision = e.storeError !== undefined ? 'error' : e.allowed ? 'allowed' : 'denied';
          const series = this.route(e.ctx.routeName);
          let c = series.decisions.get(decision);
          if (c === undefined) {
            c = this.rateLimitDecisions.child(`${series.route}\0${decision}`, { route: series.route, decision });
            series.decisions.set(decision, c);
          }
          c.value++;
        },
      ],
      [
        CHANNELS.cache,
        (m) => {
          if (!own(m)) return;
          const e = m as { ctx: RequestContext; status: string };
          const series = this.route(e.ctx.routeName);
          let c = series.cache.get(e.status);
          if (c === undefined) {
            c = this.cacheRequests.child(`${series.route}\0${e.status}`, { route: series.route, status: e.status });
            series.cache.set(e.status, c);
          }
          c.value++;
        },
      ],
      [
        CHANNELS.breaker,
        (m) => {
          if (!own(m)) return;
          const e = m as { upstream: string; to: string };
          this.breakerState.set({ upstream: e.upstream }, BREAKER_VALUE[e.to] ?? 0);
        },
      ],
      [
        CHANNELS.reload,
        (m) => {
          if (!own(m)) return;
          const result = (m as { ok: boolean }).ok ? 'success' : 'failure';
          this.reloads.child(result, { result }).value++;
        },
      ],
      [
        CHANNELS.connection,
        (m) => {
          if (!own(m)) return;
          const e = m as ConnectionEvent;
          this.connectionCount(e.listener, e.protocol).open += e.open ? 1 : -1;
        },
      ],
      [
        CHANNELS.l4Open,
        (m) => {
          if (!own(m)) return;
          const e = m as { listener: string; protocol: string };
          this.connectionCount(e.listener, e.protocol).open++;
          this.l4Sessions.child(e.listener, { listener: e.listener }).value++;
        },
      ],
      [
        CHANNELS.l4Close,
        (m) => {
          if (!own(m)) return;
          const e = m as L4SessionEvent;
          this.connectionCount(e.listener, e.protocol).open--;
        },
      ],
      [
        CHANNELS.certificates,
        (m) => {
          if (own(m)) this.certificatesChanged(m as CertificatesEvent);
        },
      ],
      this.mirrorDropped,
      this.discoveryErrors,
      this.acmeOrders,
    ];
    this.unsubscribe = subscribeAll(subscriptions);
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The running config changed (or started): its version hash is the one turnpike_config_info shows. */
  configure(config: unknown, from: { source: string; hash: string } = { source: '', hash: '' }): void {
    this.configInfo.reset();
    this.configInfo.set({ version: configVersion(config), ...from }, 1);
    this.versions = versionLabels(config);
  }

  /** This runtime's metrics and the process's, as JSON (what workers send the primary to aggregate). */
  async snapshot(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    const [own, processWide] = await Promise.all([
      this.registry.getMetricsAsJSON(),
      processRegistry().getMetricsAsJSON(),
    ]);
    return [...own, ...processWide];
  }

  async scrape(accept: string | undefined): Promise<MetricsScrape> {
    const openMetrics = wantsOpenMetrics(accept);
    const families = await this.snapshot();
    return {
      contentType: openMetrics ? OPENMETRICS_TEXT : PROMETHEUS_TEXT,
      body: formatMetrics(families, openMetrics),
    };
  }

  private requestEnded(ctx: RequestContext): void {
    const series = this.route(ctx.routeName);
    const method = METHOD_INDEX.get(ctx.req.method ?? '') ?? OTHER_METHOD;
    const cls = statusClass(ctx.status);
    const index = method * 6 + cls;
    const versions = this.versions;
    let c: CounterChild | undefined;
    if (versions === null) {
      c = series.requests[index];
      if (c === undefined) {
        const labels = { route: series.route, method: METHODS[method]!, status: STATUS_CLASSES[cls]! };
        c = this.requests.child(`${labels.route}\0${labels.method}\0${labels.status}`, labels);
        series.requests[index] = c;
      }
    } else {
      // Bounded by the config: a version no route names is counted as (other).
      const v = ctx.apiVersion;
      const version = v === '' ? NO_VERSION : versions.has(v) ? v : OTHER_VERSION;
      let list = series.byVersion.get(version);
      if (list === undefined) series.byVersion.set(version, (list = []));
      c = list[index];
      if (c === undefined) {
        const labels = { route: series.route, method: METHODS[method]!, status: STATUS_CLASSES[cls]!, version };
        c = this.requests.child(`${labels.route}\0${labels.method}\0${labels.status}\0${version}`, labels);
        list[index] = c;
      }
    }
    c.value++;
    series.duration.observe((performance.now() - ctx.startTime) / 1000);
    series.bytesIn.value += ctx.bytesIn;
    series.bytesOut.value += ctx.bytesOut;
  }

  private attemptEnded(e: AttemptEnd): void {
    const upstream = this.upstream(e.upstream);
    upstream.duration.observe(e.durationMs / 1000);
    let byOutcome = upstream.targets.get(e.target);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      upstream.targets.set(e.target, byOutcome);
    }
    const outcome = outcomeOf(e.failure, e.status);
    let c = byOutcome.get(outcome);
    if (c === undefined) {
      const name = e.upstream;
      const target = originOf(e.target);
      c = this.upstreamRequests.child(`${name}\0${target}\0${outcome}`, { upstream: name, target, outcome });
      byOutcome.set(outcome, c);
    }
    c.value++;
  }

  private route(name: string): RouteSeries {
    let series = this.routes.get(name);
    if (series === undefined) {
      series = new RouteSeries(this, name === '' ? NO_ROUTE : name);
      this.routes.set(name, series);
    }
    return series;
  }

  private upstream(name: string): UpstreamSeries {
    let series = this.upstreams.get(name);
    if (series === undefined) {
      series = new UpstreamSeries(this, name);
      this.upstreams.set(name, series);
    }
    return series;
  }

  private connectionCount(listener: string, protocol: string): { open: number } {
    const key = `${listener}\0${protocol}`;
    let c = this.connections.get(key);
    if (c === undefined) {
      c = { listener, protocol, open: 0 };
      this.connections.set(key, c);
    }
    return c;
  }

  private certificatesChanged(e: CertificatesEvent): void {
    for (const name of this.certificateNames.get(e.listener) ?? [])
      this.certificateExpiry.remove({ listener: e.listener, name });
    const names: string[] = [];
    for (const cert of e.certificates) {
      const expiry = Date.parse(cert.validTo) / 1000;
      if (!Number.isFinite(expiry)) continue;
      for (const name of cert.names) {
        names.push(name);
        this.certificateExpiry.set({ listener: e.listener, name }, expiry);
      }
    }
    if (names.length === 0) this.certificateNames.delete(e.listener);
    else this.certificateNames.set(e.listener, names);
  }
}

interface AttemptEnd {
  readonly ctx: RequestContext;
  readonly upstream: string;
  readonly target: string;
  readonly status: number;
  readonly durationMs: number;
  readonly failure: string | null;
}
