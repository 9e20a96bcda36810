// An upstream as one snapshot sees it: its config and the one way callers send to its targets (admit/settle per
// client request, begin → Lease per try). The state that must outlive the snapshot (targets, health, ejections,
// breaker, retry budget, balancer) lives in an UpstreamState shared by every snapshot with this upstream.
import { systemClock, type Clock } from '../clock.ts';
import { CHANNELS, newGateway, type Gateway } from '../observability/events.ts';
import type { HashSource } from '../config/upstream-schema.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import type { RequestContext } from '../request-context.ts';
import type { Admission } from './admission.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { OutlierDetector } from './outlier-detector.ts';
import type { RetryBudget } from './retry-budget.ts';
import { StickyCookie } from './sticky.ts';
import { upstreamTlsOptions, type ConnectionSettings, type Target } from './target.ts';
import { connectionsId } from './target-id.ts';
import { UpstreamState, type TargetSpec } from './upstream-state.ts';
import { hashKey } from './hash-key.ts';
import { wouldPick, type PickExplanation } from './would-pick.ts';

export type { TargetSpec } from './upstream-state.ts';

/**
 * One try on one target, counted in the target's in-flight requests (least-connections, draining) until `end`.
 * From `begin`, the caller settles the breaker itself (once per client request); from `beginRequest`, the
 * lease does it: its outcome, or a success when it ends without one (the client left, as the forwarder counts).
 */
export class Lease {
  readonly target: Target;
  private readonly state: UpstreamState;
  private readonly breaker: CircuitBreaker | null;
  private readonly started = performance.now();
  private outcome = 0; // 0: none yet, 1: succeeded, 2: failed
  private ended = false;

  constructor(state: UpstreamState, target: Target, breaker: CircuitBreaker | null) {
    this.state = state;
    this.target = target;
    this.breaker = breaker;
  }

  /**
   * The try's outcome (at the response head, or a failure): passive health and latency-aware balancers. Once,
   * except that a failure after a success counts too (a reset mid-body after a good head).
   */
  observe(failed: boolean): void {
    if (this.outcome === 2 || (this.outcome === 1 && !failed)) return;
    this.outcome = failed ? 2 : 1;
    this.state.observe(this.target, performance.now() - this.started, failed);
    this.breaker?.record(!failed);
  }

  /** The try is over (response done, aborted, or the tunnel closed); idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.outcome === 0 && this.breaker !== null) {
      this.outcome = 1;
      this.breaker.record(true);
    }
    const target = this.target;
    if (--target.active === 0 && target.onIdle !== null) target.onIdle();
  }
}

export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  /** Kept across reloads and shared with the other snapshots that have this upstream. */
  readonly state: UpstreamState;
  /** Response headers never sent to clients (backend identity). */
  readonly hidden: ReadonlySet<string>;
  readonly sticky: StickyCookie | null;
  /** The undici pool settings of this config's targets, applied when the snapshot is swapped in. */
  readonly connections: ConnectionSettings;
  /** Where the request's hash key comes from (consistent-hash, ip-hash), or null. */
  readonly hashOn: HashSource | null;
  readonly slowStart: number;
  /** The state's monotonic clock (slow start). */
  private readonly now: () => number;

  constructor(
    name: string,
    config: UpstreamConfig,
    state: UpstreamState,
    connections: ConnectionSettings,
    stickySecret: string,
  ) {
    this.name = name;
    this.config = config;
    this.state = state;
    this.connections = connections;
    this.now = state.clock.monotonic;
    this.hidden = new Set(config.hideResponseHeaders);
    this.hashOn =
      config.balance === 'consistent-hash'
        ? (config.hashOn ?? { kind: 'ip' })
        : config.balance === 'ip-hash'
          ? { kind: 'ip' }
          : null;
    this.slowStart = config.healthCheck.slowStart ?? 0;
    this.sticky = config.sticky
      ? new StickyCookie({ ...config.sticky, secret: config.sticky.secret ?? stickySecret })
      : null;
  }

  /** The live targets (draining ones excepted), in the config's order, then those added at run time. */
  get targets(): readonly Target[] {
    return this.state.targets;
  }

  get usableCount(): number {
    return this.state.usable.length;
  }

  get breaker(): CircuitBreaker | null {
    return this.state.breaker;
  }

  get admission(): Admission {
    return this.state.admission;
  }

  get retryBudget(): RetryBudget {
    return this.state.retryBudget;
  }

  get outliers(): OutlierDetector | null {
    return this.state.outliers;
  }

  /** Once per client request, before its first try: false when the breaker fails it fast (503 TP_CIRCUIT_OPEN). */
  admit(): boolean {
    const breaker = this.state.breaker;
    return breaker === null || breaker.tryAcquire();
  }

  /** Once per admitted client request, when it is over: its outcome for the breaker. */
  settle(failed: boolean): void {
    this.state.breaker?.record(!failed);
  }

  /** For Retry-After while the breaker refuses: whole seconds (>= 1), 0 without a breaker or when closed. */
  retryAfterSeconds(): number {
    return this.state.breaker?.retryAfterSeconds() ?? 0;
  }

  /** One try of an admitted request (`avoid`: the target a retry should not reuse when another exists). */
  begin(ctx: RequestContext, avoid?: Target): Lease | undefined {
    const target = this.pick(ctx, avoid);
    if (target === undefined) return undefined;
    target.active++;
    return new Lease(this.state, target, null);
  }

  /** A request that is one try (a WebSocket tunnel, a background fetch): admitted here, settled by its lease. */
  beginRequest(ctx: RequestContext): Lease | 'TP_CIRCUIT_OPEN' | 'TP_NO_HEALTHY_TARGET' {
    const breaker = this.state.breaker;
    if (breaker !== null && !breaker.tryAcquire()) return 'TP_CIRCUIT_OPEN';
    const target = this.pick(ctx);
    if (target === undefined) {
      breaker?.record(false);
      return 'TP_NO_HEALTHY_TARGET';
    }
    target.active++;
    return new Lease(this.state, target, breaker);
  }

  /** Run-time target changes (service discovery): they apply to the upstream, whichever snapshot asks. */
  addTarget(spec: TargetSpec): Target {
    return this.state.addTarget(spec);
  }

  drainTarget(url: string): Promise<void> | undefined {
    return this.state.drainTarget(url);
  }

  removeTarget(url: string): Promise<void> | undefined {
    return this.state.removeTarget(url);
  }

  /** What `begin` would pick for this request, and why, changing nothing (`turnpike explain`). */
  wouldPick(ctx: RequestContext): PickExplanation {
    return wouldPick(this, ctx);
  }

  /** Picks without counting (begin and beginRequest count). */
  private pick(ctx: RequestContext, avoid?: Target): Target | undefined {
    const state = this.state;
    if (this.sticky !== null && avoid === undefined) {
      const token = this.sticky.read(ctx.req.headers.cookie);
      const pinned = token === undefined ? undefined : state.byToken.get(token);
      if (pinned !== undefined && state.usableSet.has(pinned)) {
        ctx.stickyPinned = true;
        return pinned;
      }
    }
    const hash = this.hashOn === null ? '' : hashKey(ctx, this.hashOn);
    let target = state.balancer.pick(hash, avoid);
    // A retry whose only usable target just failed goes to a backup, as NGINX passes a request on to them.
    if (avoid !== undefined && target === avoid) target = state.backupOtherThan(avoid) ?? target;
    // Slow start: a target that just came back takes a share growing linearly over `slowStart`.
    if (target !== undefined && target.healthySince !== 0 && this.slowStart > 0 && state.usable.length > 1) {
      const ramp = (this.now() - target.healthySince) / this.slowStart;
      if (ramp < 1 && Math.random() >= ramp) target = state.balancer.pick(hash, target) ?? target;
    }
    return target;
  }
}

/**
 * Owns every upstream's state across reloads, by upstream name. `build` makes a snapshot's view without
 * changing what is live; `commit` (when that snapshot is swapped in) applies its configs; `release` drains
 * the upstreams no live snapshot uses any more.
 */
export class TargetRegistry {
  /** Used when a sticky upstream has no `secret`: one per instance (the primary hands it to its workers). */
  readonly stickySecret: string;
  /** Called when a run-time change (not a reload) altered a live target set. */
  onTargetsChanged: () => void = () => undefined;
  private readonly upstreams = new Map<string, UpstreamState>();
  /** Health verdicts by target id, also for targets not built yet (a worker hears from its primary early). */
  private readonly health: Map<string, boolean>;
  private readonly draining = new Set<Target>();
  private readonly hooks = {
    health: (id: string) => this.health.get(id),
    draining: this.draining,
    changed: () => this.onTargetsChanged(),
    breakerChanged: (upstream: string, from: string, to: string) => {
      if (CHANNELS.breaker.hasSubscribers) CHANNELS.breaker.publish({ gateway: this.gateway, upstream, from, to });
    },
    ejectionChanged: (upstream: string, target: string, ejected: boolean) => {
      if (CHANNELS.ejection.hasSubscribers)
        CHANNELS.ejection.publish({ gateway: this.gateway, upstream, target, ejected });
    },
  };
  /** The gateway whose events this registry's upstreams publish. */
  private readonly gateway: Gateway;
  private readonly clock: Clock;

  constructor(
    stickySecret: string,
    initialHealth?: ReadonlyMap<string, boolean>,
    gateway: Gateway = newGateway(),
    clock: Clock = systemClock,
  ) {
    this.stickySecret = stickySecret;
    this.health = new Map(initialHealth);
    this.gateway = gateway;
    this.clock = clock;
  }

  /** The last verdict for a target id (L4 targets are looked up here), or undefined. */
  healthOf(id: string): boolean | undefined {
    return this.health.get(id);
  }

  /** Records a verdict; the upstream holding that target recomputes its usable set. */
  setHealth(id: string, healthy: boolean): void {
    const before = this.health.get(id) ?? true;
    this.health.set(id, healthy);
    if (before !== healthy && CHANNELS.health.hasSubscribers)
      CHANNELS.health.publish({ gateway: this.gateway, target: id, healthy });
    for (const state of this.upstreams.values()) state.setHealth(id, healthy);
  }

  /** A snapshot's view of upstream `name`; nothing live changes until `commit`. Reads TLS files (may throw). */
  build(name: string, config: UpstreamConfig, configDir: string): UpstreamPool {
    let state = this.upstreams.get(name);
    if (state === undefined) {
      state = new UpstreamState(name, this.hooks, this.clock);
      this.upstreams.set(name, state);
    }
    const connections: ConnectionSettings = {
      id: (origin) => connectionsId(name, origin, config),
      upstream: config,
      tls: config.tls ? upstreamTlsOptions(config.tls, configDir) : null,
    };
    return new UpstreamPool(name, config, state, connections, this.stickySecret);
  }

  /** The snapshot holding `pools` is going live: their configs become the upstreams' live ones. */
  commit(pools: Iterable<UpstreamPool>): void {
    const committed = new Set<UpstreamState>();
    for (const pool of pools) {
      pool.state.commit(pool.config, pool.connections);
      this.upstreams.set(pool.name, pool.state);
      committed.add(pool.state);
    }
    // States built for a snapshot that never went live.
    for (const [name, state] of this.upstreams)
      if (state.config === null && !committed.has(state)) this.upstreams.delete(name);
  }

  /** The live HTTP targets with their upstream's active check (what the runtime's checker probes). */
  liveTargets(): { id: string; url: string; check: UpstreamConfig['healthCheck']['active'] }[] {
    const out = [];
    for (const state of this.upstreams.values()) {
      const check = state.config?.healthCheck.active;
      for (const t of state.targets) out.push({ id: t.id, url: t.key, check });
    }
    return out;
  }

  /** Drains the committed upstreams that none of `keep` (the live snapshots' pools) uses; resolves when drained. */
  async release(keep: Iterable<UpstreamPool>): Promise<void> {
    const used = new Set<UpstreamState>();
    for (const pool of keep) used.add(pool.state);
    const drains: Promise<void>[] = [];
    for (const [name, state] of this.upstreams) {
      if (used.has(state) || state.config === null) continue;
      this.upstreams.delete(name);
      drains.push(state.drainAll());
    }
    if (drains.length > 0) this.onTargetsChanged();
    await Promise.all(drains);
  }

  async closeAll(force = false): Promise<void> {
    const closing = [...this.upstreams.values()].map((s) => s.close(force));
    for (const t of this.draining)
      closing.push((force ? t.dispatcher.destroy() : t.dispatcher.close()).catch(() => undefined));
    this.upstreams.clear();
    await Promise.all(closing);
  }
}
