// What a discovery provider is: given the top-level `discovery:` settings and an upstream's `discover:` block, a
// function that asks its source once. The loop (loop.ts) schedules it and applies its answers.
// Two kinds fit the one shape: a polling source (DNS) answers at once and is asked again after its TTL; a watching
// source (a Kubernetes watch, a Consul blocking query, an etcd watch) answers its first call at once and each
// later call when the set changes, with `minRefreshMs` 0 so the loop asks again straight away.
import type { RedisClient } from '../stores/redis-client.ts';
import type { DiscoverConfig, DiscoverySettings } from '../config/discovery-schema.ts';
import type { DiscoveredTarget } from './apply.ts';

/** One answer: the targets (empty: no records) and how long it may be trusted (the TTL; undefined: unknown). */
export interface Resolution {
  readonly targets: readonly DiscoveredTarget[];
  readonly ttlMs?: number;
}

/**
 * Asks the source once; rejects when the source failed (timeout, SERVFAIL, a refused connection), which keeps the
 * last set. `signal` aborts when the loop stops (a reload changed the block, shutdown): a watch must end then.
 */
export type Resolve = (signal: AbortSignal) => Promise<Resolution>;

/** What a provider may use besides its settings: the instance's shared stores. */
export interface ProviderEnv {
  /** The `stores.redis` client of this process; undefined when the config has no `stores.redis`. */
  readonly redis: () => RedisClient | undefined;
  /** Where relative file paths of the settings start (the config file's folder); default: the working directory. */
  readonly configDir?: string;
}

export interface DiscoveryProvider {
  /** The key of the `discover:` block that selects it, and of its settings under `discovery:`. */
  readonly name: string;
  /** What the provider watches, for log lines and the admin API's `source` of a target ("dns srv _http._tcp.orders"). */
  describe(discover: DiscoverConfig): string;
  create(settings: DiscoverySettings, discover: DiscoverConfig, env: ProviderEnv): Resolve;
  /** The shortest time between two rounds after an answer, from the settings (0 for a watching source). */
  minRefreshMs(settings: DiscoverySettings): number;
  /** How long to wait after a failed round before the next; default: minRefreshMs, and 1 s at least. */
  retryMs?(settings: DiscoverySettings): number;
}

/** The wait after a failure: the provider's, else its refresh floor, never under a second (no tight retry loop). */
export function retryDelayMs(provider: DiscoveryProvider, settings: DiscoverySettings): number {
  return Math.max(1000, provider.retryMs?.(settings) ?? provider.minRefreshMs(settings));
}
