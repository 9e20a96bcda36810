// Service discovery in the primary of a multi-worker instance: the loops run here, once per instance, against
// RecordedSets; every set goes to every worker whole, and a worker that starts later gets them all. The primary's
// active health checks probe the discovered targets; its discovery failures are counted in its own registry,
// which the instance's /metrics adds to the workers' reports.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import { systemClock } from '../clock.ts';
import { RecordedSets, type DiscoveredSet } from '../discovery/instance-sets.ts';
import { DiscoveryLoops } from '../discovery/loops.ts';
import { newGateway } from '../observability/events.ts';
import { discoveryMetrics } from '../observability/metrics-discovery.ts';
import { RedisClients } from '../stores/redis-client.ts';

export class PrimaryDiscovery {
  readonly registry = new Registry();
  private readonly sets: RecordedSets;
  private readonly loops: DiscoveryLoops;
  private readonly redis: RedisClients;
  private readonly unsubscribe: () => void;

  /** `broadcast` sends a changed set to every worker; `changed` runs after it (the health checks follow). */
  constructor(log: Logger, configDir: string, broadcast: (set: DiscoveredSet) => void, changed: () => void) {
    const gateway = newGateway();
    const [channel, count] = discoveryMetrics(this.registry, gateway);
    channel.subscribe(count);
    this.unsubscribe = () => channel.unsubscribe(count);
    this.sets = new RecordedSets((set) => {
      broadcast(set);
      changed();
    });
    this.redis = new RedisClients((err) => log.warn({ error: err.message }, 'redis store error'));
    this.loops = new DiscoveryLoops({
      pool: (upstream) => this.sets.pool(upstream),
      clock: systemClock,
      gateway,
      log: { warn: (fields, msg) => log.warn(fields, msg), info: (fields, msg) => log.info(fields, msg) },
      providerEnv: (config) => {
        const settings = config.stores.redis;
        return { redis: () => (settings ? this.redis.get({ ...settings, configDir }) : undefined), configDir };
      },
    });
  }

  /** Starts, keeps or stops loops for the config the instance now runs. */
  sync(config: Config): void {
    this.sets.keep(config);
    this.loops.sync(config);
  }

  /** Every set, for a worker that starts now. */
  all(): DiscoveredSet[] {
    return this.sets.all();
  }

  /** Each upstream's discovered origins, for the health checks. */
  urls(): Map<string, string[]> {
    return this.sets.urls();
  }

  stop(): void {
    this.loops.stopAll();
    this.unsubscribe();
    this.redis.close();
  }
}
