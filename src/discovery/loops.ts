// The discovery loops of one runtime, one per upstream with a `discover:` block, kept across reloads as the
// upstream state is: the same block (and the same `discovery:` settings) keeps its loop and targets, a changed
// one restarts it (taking its targets over, then diffing), a removed upstream stops it.
// With `workers:`, the primary runs them (runtime/primary-discovery.ts) and the workers apply the sets it sends
// (instance-sets.ts).
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { Gateway } from '../observability/events.ts';
import type { LivePool } from './apply.ts';
import { NetworkGuard } from './guard.ts';
import { DiscoveryLoop, type LoopOptions } from './loop.ts';
import type { ProviderEnv } from './provider.ts';
import { retryDelayMs } from './provider.ts';
import { providerOf } from './registry.ts';

export class DiscoveryLoops {
  private readonly loops = new Map<string, { key: string; loop: DiscoveryLoop }>();
  private readonly env: {
    readonly pool: (upstream: string) => LivePool | undefined;
    readonly clock: Clock;
    readonly gateway: Gateway;
    readonly log: LoopOptions['log'];
    /** The stores a provider may use, for the config being applied. */
    readonly providerEnv: (config: Config) => ProviderEnv;
  };

  constructor(env: DiscoveryLoops['env']) {
    this.env = env;
  }

  /** Starts, keeps, restarts or stops loops to match `config` (called once its snapshot is current). */
  sync(config: Config): void {
    const seen = new Set<string>();
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const discover = upstream.discover;
      if (discover === undefined) continue;
      seen.add(name);
      const key = JSON.stringify([discover, config.discovery]);
      const running = this.loops.get(name);
      if (running?.key === key) continue;
      running?.loop.stop();
      const provider = providerOf(discover);
      let resolve;
      try {
        resolve = provider.create(config.discovery, discover, this.env.providerEnv(config));
      } catch (err) {
        // The config is applied already: a source that cannot be set up leaves the upstream as it is, loudly.
        this.env.log.warn({ upstream: name, error: (err as Error).message }, 'discovery cannot start');
        continue;
      }
      const guard = NetworkGuard.of(discover);
      const loop = new DiscoveryLoop({
        upstream: name,
        provider: provider.name,
        source: `${provider.name} ${provider.describe(discover)}`,
        resolve,
        pool: () => this.env.pool(name),
        clock: this.env.clock,
        minRefreshMs: provider.minRefreshMs(config.discovery),
        retryMs: retryDelayMs(provider, config.discovery),
        emptyGraceMs: discover.emptyGrace,
        gateway: this.env.gateway,
        log: this.env.log,
        ...(guard !== undefined ? { guard } : {}),
        ...(running !== undefined ? { previous: running.loop } : {}),
      });
      this.loops.set(name, { key, loop });
      loop.start();
    }
    for (const [name, running] of this.loops) {
      if (seen.has(name)) continue;
      running.loop.stop();
      this.loops.delete(name);
      // An upstream that now lists its targets drains the discovered ones (a removed upstream drains them all).
      const pool = config.upstreams[name] !== undefined ? this.env.pool(name) : undefined;
      if (pool !== undefined) running.loop.applier.apply(pool, []);
    }
  }

  stopAll(): void {
    for (const { loop } of this.loops.values()) loop.stop();
    this.loops.clear();
  }
}
