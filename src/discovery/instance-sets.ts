// Discovery once per instance: with `workers:`, the primary runs the loops against a RecordedSets (the pools it
// does not have), which hands each upstream's whole set to the workers; each worker applies what it receives to
// its own pools with WorkerSets. One resolution, one set, every worker the same targets.
import type { Config } from '../config/schema.ts';
import { TargetSetApplier, type DiscoveredTarget, type LivePool } from './apply.ts';

/** One upstream's discovered targets as the primary sends them to its workers. */
export interface DiscoveredSet {
  readonly upstream: string;
  readonly targets: readonly DiscoveredTarget[];
  /** Where they came from ("dns srv _http._tcp.orders"); undefined for an emptied set. */
  readonly source?: string;
}

/** The primary's stand-in for the pools: records each upstream's set and reports it whole once a round changed it. */
export class RecordedSets {
  private readonly sets = new Map<string, { targets: Map<string, DiscoveredTarget>; source?: string }>();
  private readonly dirty = new Set<string>();
  private readonly onChange: (set: DiscoveredSet) => void;

  constructor(onChange: (set: DiscoveredSet) => void) {
    this.onChange = onChange;
  }

  /** The pool the loop of `upstream` applies to. */
  pool(upstream: string): LivePool {
    return {
      addTarget: (spec) => {
        const set = this.entry(upstream);
        set.targets.set(new URL(spec.url).origin, {
          url: spec.url,
          weight: spec.weight ?? 1,
          backup: spec.backup ?? false,
        });
        if (spec.source !== undefined) set.source = spec.source;
        this.changed(upstream);
      },
      drainTarget: (url) => {
        this.entry(upstream).targets.delete(new URL(url).origin);
        this.changed(upstream);
        return undefined;
      },
    };
  }

  /** Every set known, for a worker that starts now. */
  all(): DiscoveredSet[] {
    return [...this.sets.keys()].map((u) => this.setOf(u));
  }

  /** Each upstream's discovered origins (the primary's health checks probe them). */
  urls(): Map<string, string[]> {
    return new Map([...this.sets].map(([u, s]) => [u, [...s.targets.values()].map((t) => t.url)]));
  }

  /** Forgets the upstreams the config no longer has. */
  keep(config: Config): void {
    for (const u of this.sets.keys()) if (config.upstreams[u] === undefined) this.sets.delete(u);
  }

  private entry(upstream: string): { targets: Map<string, DiscoveredTarget>; source?: string } {
    let set = this.sets.get(upstream);
    if (set === undefined) this.sets.set(upstream, (set = { targets: new Map() }));
    return set;
  }

  // A round adds and drains target by target: the workers hear of it once, after the round.
  private changed(upstream: string): void {
    if (this.dirty.size === 0) queueMicrotask(() => this.flush());
    this.dirty.add(upstream);
  }

  private flush(): void {
    for (const u of this.dirty) this.onChange(this.setOf(u));
    this.dirty.clear();
  }

  private setOf(upstream: string): DiscoveredSet {
    const set = this.sets.get(upstream)!;
    return {
      upstream,
      targets: [...set.targets.values()],
      ...(set.source !== undefined ? { source: set.source } : {}),
    };
  }
}

/** A worker's side: the sets its primary sent, applied to its pools now and after every config swap. */
export class WorkerSets {
  private readonly sets = new Map<string, { set: DiscoveredSet; applier: TargetSetApplier }>();
  private pools: ((upstream: string) => LivePool | undefined) | null = null;

  /** The runtime's pools; sets received before it exists wait for it. */
  attach(pools: (upstream: string) => LivePool | undefined): this {
    this.pools = pools;
    return this;
  }

  receive(set: DiscoveredSet): void {
    const known = this.sets.get(set.upstream);
    const entry = known ?? { set, applier: new TargetSetApplier() };
    entry.set = set;
    this.sets.set(set.upstream, entry);
    this.apply(entry);
  }

  /** After a swap: an upstream the config dropped is drained by the runtime with its pool; the others re-apply. */
  sync(config: Config): void {
    for (const [u, entry] of this.sets) {
      if (config.upstreams[u] === undefined) this.sets.delete(u);
      else this.apply(entry);
    }
  }

  stopAll(): void {
    this.sets.clear();
  }

  private apply(entry: { set: DiscoveredSet; applier: TargetSetApplier }): void {
    const pool = this.pools?.(entry.set.upstream);
    if (pool !== undefined) entry.applier.apply(pool, entry.set.targets, entry.set.source);
  }
}
