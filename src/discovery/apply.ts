// Applies a discovered target set to an upstream's live pool, for every provider: adds the new targets, updates
// the weight or backup flag of those that changed, drains those that left. It touches only the targets it added,
// so targets an operator added at run time are left alone.

/** One discovered target: an http(s) origin, its weight, and whether it is a backup. */
export interface DiscoveredTarget {
  readonly url: string;
  readonly weight: number;
  readonly backup: boolean;
}

/** The run-time API of an upstream pool (UpstreamPool) that discovery needs. */
export interface LivePool {
  addTarget(spec: { url: string; weight?: number; backup?: boolean; source?: string }): unknown;
  drainTarget(url: string): Promise<void> | undefined;
}

export class TargetSetApplier {
  /** What this applier put in the pool, by origin. */
  private owned = new Map<string, DiscoveredTarget>();

  /** Takes over the targets a previous applier of the same upstream put there (a changed discover block). */
  constructor(previous?: TargetSetApplier) {
    if (previous !== undefined) this.owned = new Map(previous.owned);
  }

  /** The set last applied, in the order it was given. */
  get current(): DiscoveredTarget[] {
    return [...this.owned.values()];
  }

  /** Makes the pool's discovered targets `next` (`source`: where they came from, for the admin API); returns
   *  whether anything changed. */
  apply(pool: LivePool, next: readonly DiscoveredTarget[], source?: string): boolean {
    const wanted = new Map<string, DiscoveredTarget>();
    for (const t of next) wanted.set(new URL(t.url).origin, t);
    let changed = false;
    for (const [origin, t] of wanted) {
      const had = this.owned.get(origin);
      if (had !== undefined && had.weight === t.weight && had.backup === t.backup) continue;
      pool.addTarget({ url: t.url, weight: t.weight, backup: t.backup, ...(source !== undefined ? { source } : {}) });
      changed = true;
    }
    for (const [origin, t] of this.owned) {
      if (wanted.has(origin)) continue;
      // Drained, not cut: requests in flight to a target that left DNS finish.
      void pool.drainTarget(t.url);
      changed = true;
    }
    this.owned = wanted;
    return changed;
  }
}
