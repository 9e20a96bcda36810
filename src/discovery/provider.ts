// What a discovery provider is: given the top-level `discovery:` settings and an upstream's `discover:` block, a
// function that asks its source once. The loop (loop.ts) schedules it and applies its answers.
import type { DiscoverConfig, DiscoverySettings } from '../config/discovery-schema.ts';
import type { DiscoveredTarget } from './apply.ts';

/** One answer: the targets (empty: no records) and how long it may be trusted (the TTL; undefined: unknown). */
export interface Resolution {
  readonly targets: readonly DiscoveredTarget[];
  readonly ttlMs?: number;
}

/** Asks the source once; rejects when the source failed (timeout, SERVFAIL), which keeps the last set. */
export type Resolve = () => Promise<Resolution>;

export interface DiscoveryProvider {
  /** The key of the `discover:` block that selects it, and of its settings under `discovery:`. */
  readonly name: string;
  /** What the provider watches, for log lines ("srv _http._tcp.orders"). */
  describe(discover: DiscoverConfig): string;
  create(settings: DiscoverySettings, discover: DiscoverConfig): Resolve;
  /** The shortest time between two rounds, from the settings. */
  minRefreshMs(settings: DiscoverySettings): number;
}
