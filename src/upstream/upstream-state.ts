// What an upstream knows that must outlive a snapshot: its live targets (by origin), their health, ejections and
// in-flight counts, the circuit breaker, the retry budget and the balancer. One per upstream name, owned by the
// TargetRegistry; every snapshot's UpstreamPool of that name reads it. A reload commits its config here: each
// part is kept while the settings it depends on are unchanged and starts fresh when they change.
import { systemClock, type Clock } from '../clock.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import { Admission } from './admission.ts';
import type { Balancer } from './balancers/balancer.ts';
import { createBalancer } from './balancers/create-balancer.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { OutlierDetector } from './outlier-detector.ts';
import { RetryBudget } from './retry-budget.ts';
import { Target, type ConnectionSettings } from './target.ts';
import { targetKey } from './target-id.ts';

/** What the registry lends every upstream state. */
export interface StateHooks {
  /** The last active-check verdict for a target id (it may have come before the target existed). */
  readonly health: (id: string) => boolean | undefined;
  /** Targets draining after they left their upstream (closed at stop if still there). */
  readonly draining: Set<Target>;
  /** The live target set changed outside a reload (the active checks follow it). */
  readonly changed: () => void;
  /** A breaker changed state; a target left or came back to rotation by passive health (the event stream). */
  readonly breakerChanged: (upstream: string, from: string, to: string) => void;
  readonly ejectionChanged: (upstream: string, target: string, ejected: boolean) => void;
}

/** A target as the run-time API takes it (service discovery). */
export interface TargetSpec {
  readonly url: string;
  readonly weight?: number;
  readonly backup?: boolean;
  /** Where it came from, for the admin API: a discovery source ("dns srv _http._tcp.orders"); default "admin". */
  readonly source?: string;
}

export class UpstreamState {
  readonly name: string;
  /** What slow start, breakers and ejections count time on (the runtime's). */
  readonly clock: Clock;
  /** The config last committed; null until a snapshot with this upstream is swapped in. */
  config: UpstreamConfig | null = null;
  /** Targets in rotation order (the config's, then those added at run time); draining ones are not here. */
  targets: readonly Target[] = [];
  breaker: CircuitBreaker | null = null;
  outliers: OutlierDetector | null = null;
  retryBudget = new RetryBudget({ ratio: 0.2 });
  /** maxRequests and queue: kept across reloads, so a reload never lets more through than the limit. */
  readonly admission = new Admission(1024, 1024, 5000);
  balancer: Balancer<Target> = createBalancer<Target>('round-robin');
  /** The targets picks choose from: healthy, not ejected primaries, or else healthy backups. */
  usable: readonly Target[] = [];
  usableSet: ReadonlySet<Target> = new Set();
  byToken: ReadonlyMap<string, Target> = new Map();
  private byKey = new Map<string, Target>();
  /** Origins held out of rotation by an operator (the admin API's drain): kept across reloads until resumed. */
  readonly paused = new Set<string>();
  private connections: ConnectionSettings | null = null;
  // What each part was built from: a part is rebuilt only when its settings change.
  private breakerOf = '';
  private outliersOf = '';
  private budgetOf = '';
  private balancerOf = '';
  private readonly hooks: StateHooks;
  /** Cancels the wait for the earliest return of an ejected target. */
  private returnTimer: (() => void) | null = null;
  /** Targets passive health had out of rotation at the last refresh (to publish the changes). */
  private ejected: ReadonlySet<Target> = new Set();
  private closed = false;

  constructor(name: string, hooks: StateHooks, clock: Clock = systemClock) {
    this.name = name;
    this.hooks = hooks;
    this.clock = clock;
  }

  /** Makes `config` the live one: keeps every part whose settings are unchanged, drains targets it no longer lists. */
  commit(config: UpstreamConfig, connections: ConnectionSettings): void {
    this.config = config;
    this.connections = connections;
    this.closed = false;
    this.admission.configure(config.maxRequests, config.queue, config.timeouts.connect);
    let changed = false; // whether the balancer or the outlier detector must hear of the target set again
    const breakerOf = JSON.stringify(config.circuitBreaker ?? null);
    if (breakerOf !== this.breakerOf) {
      this.breakerOf = breakerOf;
      this.breaker = config.circuitBreaker
        ? this.watched(new CircuitBreaker({ ...config.circuitBreaker, now: this.clock.monotonic }))
        : null;
    }
    const passive = config.healthCheck.passive;
    const outliersOf = JSON.stringify(passive ?? null);
    if (outliersOf !== this.outliersOf) {
      this.outliersOf = outliersOf;
      this.outliers = passive ? new OutlierDetector({ ...passive, now: this.clock.monotonic }) : null;
      changed = true;
    }
    const ratio = config.retries?.budget ?? 0.2;
    const minRetryConcurrency = config.retries?.minConcurrent ?? 3;
    const budgetOf = `${ratio}/${minRetryConcurrency}`;
    if (budgetOf !== this.budgetOf) {
      this.budgetOf = budgetOf;
      this.retryBudget = new RetryBudget({ ratio, minRetryConcurrency });
    }
    const balancerOf = `${config.balance}|${JSON.stringify(config.hashOn ?? null)}`;
    if (balancerOf !== this.balancerOf) {
      this.balancerOf = balancerOf;
      this.balancer = createBalancer<Target>(config.balance);
      changed = true;
    }
    const next: Target[] = [];
    const listed = new Set<string>();
    for (const t of config.targets) {
      const key = new URL(t.url).origin;
      listed.add(key);
      let target = this.byKey.get(key);
      if (target === undefined) target = this.create(t.url, t.weight, t.backup, true, 'config');
      else {
        if (target.weight !== t.weight || target.backup !== t.backup) changed = true;
        target.weight = t.weight;
        target.backup = t.backup;
        target.fromConfig = true;
        target.source = 'config';
        target.connect(connections);
      }
      if (this.targets[next.length] !== target) changed = true;
      next.push(target);
    }
    for (const target of this.targets) {
      if (listed.has(target.key)) continue;
      if (target.fromConfig) void this.drain(target, false);
      else {
        target.connect(connections);
        if (this.targets[next.length] !== target) changed = true;
        next.push(target);
      }
    }
    // An unchanged set leaves the balancer as it is (a weighted round robin keeps its place in the cycle).
    if (changed || next.length !== this.targets.length) this.setTargets(next);
  }

  /** Adds a target at run time (or updates the weight of a live one); the active checks start probing it. */
  addTarget(spec: TargetSpec): Target {
    const connections = this.connections;
    if (connections === null) throw new Error(`upstream "${this.name}" is not in service yet`);
    const url = new URL(spec.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RangeError(`expected an http(s) origin, got ${spec.url}`);
    let target = this.byKey.get(url.origin);
    if (target === undefined) {
      target = this.create(spec.url, spec.weight ?? 1, spec.backup ?? false, false, spec.source ?? 'admin');
      this.setTargets([...this.targets, target]);
    } else {
      target.weight = spec.weight ?? target.weight;
      target.backup = spec.backup ?? target.backup;
      if (spec.source !== undefined) target.source = spec.source;
      this.setTargets(this.targets);
    }
    this.hooks.changed();
    return target;
  }

  /**
   * Takes a target out of rotation for good: it gets no new requests, finishes those in flight (and its open
   * WebSockets), then its connection pool is closed; resolves then. Undefined when there is no such target.
   */
  drainTarget(url: string): Promise<void> | undefined {
    return this.takeOut(url, false);
  }

  /** Takes a target out at once: its connection pool is destroyed, cutting requests in flight. */
  removeTarget(url: string): Promise<void> | undefined {
    return this.takeOut(url, true);
  }

  private takeOut(url: string, destroy: boolean): Promise<void> | undefined {
    const target = this.byKey.get(new URL(url).origin);
    if (target === undefined) return undefined;
    const done = this.drain(target, destroy);
    this.setTargets(this.targets.filter((t) => t !== target));
    this.hooks.changed();
    return done;
  }

  /**
   * Holds a target out of rotation without removing it (an operator's drain): no new requests, those in flight
   * finish, its pool and health state stay. Kept across reloads, since this state outlives snapshots.
   */
  pauseTarget(origin: string): void {
    this.paused.add(origin);
    this.refresh();
  }

  /** Puts a paused target back in rotation. */
  resumeTarget(origin: string): void {
    if (this.paused.delete(origin)) this.refresh();
  }

  /** Every target out (the upstream left the config and no live snapshot uses it); resolves when all are drained. */
  drainAll(): Promise<void> {
    const all = this.targets;
    const done = Promise.all(all.map((t) => this.drain(t, false)));
    this.setTargets([]);
    this.stopTimer();
    return done.then(() => undefined);
  }

  /** Closes every live target's pool (stop): gracefully, or cutting requests when `force`. */
  close(force: boolean): Promise<void> {
    this.closed = true;
    this.stopTimer();
    return Promise.all(
      this.targets.map((t) => (force ? t.dispatcher.destroy() : t.dispatcher.close()).catch(() => undefined)),
    ).then(() => undefined);
  }

  /** Records an active-check verdict for target `id`; recomputes the usable set when it changed a live target. */
  setHealth(id: string, healthy: boolean): void {
    if (!id.startsWith(this.name) || id.charCodeAt(this.name.length) !== 124 /* | */) return;
    const target = this.byKey.get(id.slice(this.name.length + 1));
    if (target === undefined || target.id !== id || target.healthy === healthy) return;
    target.healthy = healthy;
    if (healthy) target.healthySince = this.clock.monotonic();
    this.refresh();
  }

  /** One outcome for passive health (the outlier detector) and latency-aware balancers. */
  observe(target: Target, latencyMs: number, failed: boolean): void {
    this.balancer.observe?.(target, latencyMs, failed);
    if (this.outliers !== null && this.outliers.record(target.key, failed)) this.refresh();
  }

  /** A healthy, not ejected backup other than `avoid` (a retry whose only usable target just failed). */
  backupOtherThan(avoid: Target): Target | undefined {
    for (const t of this.targets) {
      if (
        t.backup &&
        t !== avoid &&
        t.healthy &&
        !this.paused.has(t.key) &&
        !(this.outliers?.isEjected(t.key) ?? false)
      )
        return t;
    }
    return undefined;
  }

  /**
   * Recomputes the usable targets: healthy, not ejected primaries; when there are none, healthy backups.
   * Called when health, an ejection or the target set changes, never per request.
   */
  refresh(): void {
    const outliers = this.outliers;
    if (outliers !== null) {
      const ejected = new Set(this.targets.filter((t) => outliers.isEjected(t.key)));
      for (const t of ejected) if (!this.ejected.has(t)) this.hooks.ejectionChanged(this.name, t.url, true);
      for (const t of this.ejected)
        if (!ejected.has(t) && this.byKey.get(t.key) === t) this.hooks.ejectionChanged(this.name, t.url, false);
      this.ejected = ejected;
    }
    const paused = this.paused;
    const healthy = (t: Target) =>
      t.healthy && (paused.size === 0 || !paused.has(t.key)) && !(this.outliers?.isEjected(t.key) ?? false);
    let usable = this.targets.filter((t) => !t.backup && healthy(t));
    if (usable.length === 0) usable = this.targets.filter((t) => t.backup && healthy(t));
    this.usable = usable;
    this.usableSet = new Set(usable);
    this.balancer.update(usable);
    this.scheduleReturn();
  }

  private watched(breaker: CircuitBreaker): CircuitBreaker {
    let from = breaker.state;
    breaker.onStateChange = (to) => {
      this.hooks.breakerChanged(this.name, from, to);
      from = to;
    };
    return breaker;
  }

  private create(url: string, weight: number, backup: boolean, fromConfig: boolean, source: string): Target {
    const target = new Target(targetKey(this.name, url), url, weight, backup, fromConfig, this.connections!);
    target.source = source;
    target.healthy = this.hooks.health(target.id) ?? true;
    return target;
  }

  private setTargets(targets: readonly Target[]): void {
    this.targets = targets;
    this.byKey = new Map(targets.map((t) => [t.key, t]));
    this.byToken = new Map(targets.map((t) => [t.stickyToken, t]));
    this.outliers?.setTargets(targets.map((t) => t.key));
    this.refresh();
  }

  /** Out of rotation; its pool closes once its requests finish; resolves when its leases (tunnels too) have ended. */
  private drain(target: Target, destroy: boolean): Promise<void> {
    target.draining = true;
    this.hooks.draining.add(target);
    const closing = (destroy ? target.dispatcher.destroy() : target.dispatcher.close()).catch(() => undefined);
    return new Promise<void>((resolve) => {
      const finish = () => {
        target.onIdle = null;
        this.hooks.draining.delete(target);
        resolve();
      };
      void closing.then(() => {
        if (target.active <= 0) finish();
        else target.onIdle = finish;
      });
    });
  }

  /** Ejected targets come back on their own: one timer for the earliest return. */
  private scheduleReturn(): void {
    this.stopTimer();
    const at = this.outliers?.nextReturnAt();
    if (at === undefined || this.closed) return;
    this.returnTimer = this.clock.schedule(Math.max(1, at - this.clock.monotonic() + 1), () => this.refresh());
  }

  private stopTimer(): void {
    this.returnTimer?.();
    this.returnTimer = null;
  }
}
