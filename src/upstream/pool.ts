// An upstream: its targets, its balancer, the set of targets usable right now (health, ejection, backups) and
// its resilience state (breaker, retry budget, outlier detection). Compiled once per snapshot.
import type { HashSource } from '../config/upstream-schema.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import type { RequestContext } from '../request-context.ts';
import type { Balancer } from './balancers/balancer.ts';
import { createBalancer } from './balancers/create-balancer.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { OutlierDetector } from './outlier-detector.ts';
import { RetryBudget } from './retry-budget.ts';
import { cookieValue, StickyCookie, stickyToken } from './sticky.ts';
import { Target, targetId } from './target.ts';

export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly targets: readonly Target[];
  readonly balancer: Balancer<Target>;
  /** Response headers never sent to clients (backend identity). */
  readonly hidden: ReadonlySet<string>;
  readonly breaker: CircuitBreaker | null;
  readonly retryBudget: RetryBudget | null;
  readonly outliers: OutlierDetector | null;
  readonly sticky: StickyCookie | null;
  private readonly byToken: ReadonlyMap<string, Target>;
  readonly tokens: ReadonlyMap<Target, string>;
  private readonly hashOn: HashSource | null;
  private readonly slowStart: number;
  private usable: Target[] = [];
  private usableSet = new Set<Target>();
  private returnTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(name: string, config: UpstreamConfig, targets: Target[], stickySecret: string) {
    this.name = name;
    this.config = config;
    this.targets = targets;
    this.balancer = createBalancer<Target>(config.balance);
    this.hidden = new Set(config.hideResponseHeaders);
    this.hashOn = config.balance === 'consistent-hash' ? (config.hashOn ?? { kind: 'ip' }) : config.balance === 'ip-hash' ? { kind: 'ip' } : null;
    this.slowStart = config.healthCheck.slowStart ?? 0;
    const cb = config.circuitBreaker;
    this.breaker = cb ? new CircuitBreaker(cb) : null;
    const retries = config.retries;
    this.retryBudget = new RetryBudget({ ratio: retries?.budget ?? 0.2, minRetryConcurrency: retries?.minConcurrent ?? 3 });
    const passive = config.healthCheck.passive;
    this.outliers = passive ? new OutlierDetector(passive) : null;
    this.outliers?.setTargets(targets.map((t) => t.key));
    this.sticky = config.sticky ? new StickyCookie({ ...config.sticky, secret: config.sticky.secret ?? stickySecret }) : null;
    this.tokens = new Map(targets.map((t) => [t, stickyToken(t.key)]));
    this.byToken = new Map([...this.tokens].map(([t, token]) => [token, t]));
    this.refresh();
  }

  /**
   * Recomputes the usable targets: healthy, not ejected primaries; when there are none, healthy backups.
   * Called when a health check or the outlier detector changes a target, never per request.
   */
  refresh(): void {
    const healthy = (t: Target) => t.healthy && !(this.outliers?.isEjected(t.key) ?? false);
    let usable = this.targets.filter((t) => !t.backup && healthy(t));
    if (usable.length === 0) usable = this.targets.filter((t) => t.backup && healthy(t));
    this.usable = usable;
    this.usableSet = new Set(usable);
    this.balancer.update(usable);
    this.scheduleReturn();
  }

  get usableCount(): number {
    return this.usable.length;
  }

  /** A target for this request (`avoid`: the one a retry should not reuse when another exists). */
  pick(ctx: RequestContext, avoid?: Target): Target | undefined {
    if (this.sticky !== null && avoid === undefined) {
      const token = this.sticky.read(ctx.req.headers.cookie);
      const pinned = token === undefined ? undefined : this.byToken.get(token);
      if (pinned !== undefined && this.usableSet.has(pinned)) {
        ctx.stickyPinned = true;
        return pinned;
      }
    }
    const hash = this.hashOn === null ? '' : hashKey(ctx, this.hashOn);
    let target = this.balancer.pick(hash, avoid);
    // A retry whose only usable target just failed goes to a backup, as NGINX passes a request on to them.
    if (avoid !== undefined && target === avoid) target = this.backupOtherThan(avoid) ?? target;
    // Slow start: a target that just came back takes a share growing linearly over `slowStart`.
    if (target !== undefined && target.healthySince !== 0 && this.slowStart > 0 && this.usable.length > 1) {
      const ramp = (performance.now() - target.healthySince) / this.slowStart;
      if (ramp < 1 && Math.random() >= ramp) target = this.balancer.pick(hash, target) ?? target;
    }
    return target;
  }

  private backupOtherThan(avoid: Target): Target | undefined {
    for (const t of this.targets) {
      if (t.backup && t !== avoid && t.healthy && !(this.outliers?.isEjected(t.key) ?? false)) return t;
    }
    return undefined;
  }

  /** Reports one attempt's outcome to the passive health check (and the latency-aware balancer). */
  observe(target: Target, latencyMs: number, failed: boolean): void {
    this.balancer.observe?.(target, latencyMs, failed);
    if (this.outliers !== null && this.outliers.record(target.key, failed)) this.refresh();
  }

  close(): void {
    this.closed = true;
    if (this.returnTimer) clearTimeout(this.returnTimer);
    this.returnTimer = null;
  }

  /** Ejected targets come back on their own: one timer for the earliest return. */
  private scheduleReturn(): void {
    if (this.returnTimer) clearTimeout(this.returnTimer);
    this.returnTimer = null;
    const at = this.outliers?.nextReturnAt();
    if (at === undefined || this.closed) return;
    this.returnTimer = setTimeout(() => this.refresh(), Math.max(1, at - performance.now() + 1));
    this.returnTimer.unref();
  }
}

/** The request's hash key for consistent-hash / ip-hash ('' when the request lacks it: the balancer rotates). */
function hashKey(ctx: RequestContext, source: HashSource): string {
  switch (source.kind) {
    case 'ip':
      return ctx.clientIp;
    case 'path':
      return ctx.path;
    case 'header': {
      const v = ctx.req.headers[source.name];
      return v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie': {
      const header = ctx.req.headers.cookie;
      return header === undefined ? '' : (cookieValue(header, source.name) ?? '');
    }
    case 'query':
      return queryValue(ctx.query, source.name) ?? '';
  }
}

function queryValue(query: string, name: string): string | undefined {
  let i = 1; // after '?'
  while (i < query.length) {
    const end = query.indexOf('&', i);
    const stop = end === -1 ? query.length : end;
    if (query.startsWith(name, i) && query.charCodeAt(i + name.length) === 61 /* = */ && i + name.length < stop) {
      return query.slice(i + name.length + 1, stop);
    }
    i = stop + 1;
  }
  return undefined;
}

/**
 * Owns every target (its connection pool and health) across reloads. `build` reuses targets whose id is
 * unchanged; `release` closes the ones no live snapshot uses, after their in-flight requests finish.
 */
export class TargetRegistry {
  private readonly targets = new Map<string, Target>();
  /** Used when a sticky upstream has no `secret`: one per instance (the primary hands it to its workers). */
  readonly stickySecret: string;

  /** Health verdicts by target id, also for targets not built yet (a worker hears from its primary early). */
  private readonly health: Map<string, boolean>;

  constructor(stickySecret: string, initialHealth?: ReadonlyMap<string, boolean>) {
    this.stickySecret = stickySecret;
    this.health = new Map(initialHealth);
  }

  /** The last verdict for a target id (L4 targets are looked up here), or undefined. */
  healthOf(id: string): boolean | undefined {
    return this.health.get(id);
  }

  /** Records a verdict; true when it changed a live target (its pools must refresh). */
  setHealth(id: string, healthy: boolean): boolean {
    this.health.set(id, healthy);
    const target = this.targets.get(id);
    if (target === undefined || target.healthy === healthy) return false;
    target.healthy = healthy;
    if (healthy) target.healthySince = performance.now();
    return true;
  }

  build(name: string, config: UpstreamConfig, configDir: string): UpstreamPool {
    const targets = config.targets.map((t) => {
      const id = targetId(name, t.url, t.weight, t.backup, config);
      let target = this.targets.get(id);
      if (!target) {
        target = new Target(id, t.url, t.weight, t.backup, config, configDir);
        target.healthy = this.health.get(id) ?? true;
        this.targets.set(id, target);
      }
      return target;
    });
    return new UpstreamPool(name, config, targets, this.stickySecret);
  }

  get(id: string): Target | undefined {
    return this.targets.get(id);
  }

  /** Closes (gracefully: queued and running requests finish) every target not in `keep`. */
  async release(keep: Iterable<UpstreamPool>): Promise<void> {
    const used = new Set<string>();
    for (const pool of keep) for (const t of pool.targets) used.add(t.id);
    const closing: Promise<void>[] = [];
    for (const [id, target] of this.targets) {
      if (used.has(id)) continue;
      this.targets.delete(id);
      closing.push(target.dispatcher.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  async closeAll(force = false): Promise<void> {
    const all = [...this.targets.values()];
    this.targets.clear();
    await Promise.all(all.map((t) => (force ? t.dispatcher.destroy() : t.dispatcher.close()).catch(() => undefined)));
  }
}
