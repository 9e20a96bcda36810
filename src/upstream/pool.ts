// An upstream: its targets, its balancer and its per-request settings, compiled once per snapshot.
import type { UpstreamConfig } from '../config/schema.ts';
import type { RequestContext } from '../request-context.ts';
import type { Balancer } from './balancers/balancer.ts';
import { RoundRobinBalancer } from './balancers/round-robin.ts';
import { Target, targetKey } from './target.ts';

export class UpstreamPool {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly targets: readonly Target[];
  readonly balancer: Balancer<Target>;
  /** Response headers never sent to clients (backend identity). */
  readonly hidden: ReadonlySet<string>;

  constructor(name: string, config: UpstreamConfig, targets: Target[]) {
    this.name = name;
    this.config = config;
    this.targets = targets;
    this.balancer = new RoundRobinBalancer<Target>();
    this.balancer.update(targets);
    this.hidden = new Set(config.hideResponseHeaders);
  }

  pick(_ctx: RequestContext): Target | undefined {
    return this.balancer.pick('');
  }
}

/**
 * Owns every target's connection pool across reloads. `build` reuses targets whose key is unchanged;
 * `release` closes the ones a new snapshot no longer uses, after their in-flight requests finish.
 */
export class TargetRegistry {
  private readonly targets = new Map<string, Target>();

  build(name: string, config: UpstreamConfig): UpstreamPool {
    const targets = config.targets.map((t) => {
      const key = targetKey(t.url, config) + `|${t.weight}`;
      let target = this.targets.get(key);
      if (!target) {
        target = new Target(key, t.url, t.weight, config);
        this.targets.set(key, target);
      }
      return target;
    });
    return new UpstreamPool(name, config, targets);
  }

  /** Closes (gracefully: queued and running requests finish) every target not in `keep`. */
  async release(keep: Iterable<UpstreamPool>): Promise<void> {
    const used = new Set<string>();
    for (const pool of keep) for (const t of pool.targets) used.add(t.key);
    const closing: Promise<void>[] = [];
    for (const [key, target] of this.targets) {
      if (used.has(key)) continue;
      this.targets.delete(key);
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
