// Peak EWMA (Finagle, Linkerd): each target keeps an exponentially weighted latency that jumps at once to
// any higher sample ("peak": a slowdown counts immediately, a recovery slowly), and also decays toward zero
// while the target gets no samples, so a target that was slow is probed again later. Cost is
// latency * (in flight + 1) / weight; two random targets are compared (power of two choices), so traffic
// leaves a slow target without herding onto the single fastest one.
import { NO_TARGET, type BalancedTarget, type Balancer, type BalancerPeek } from './balancer.ts';

export interface EwmaOptions {
  /** Clock in ms; injectable so tests simulate time. Default performance.now. */
  readonly now?: () => number;
  /** Uniform [0, 1) source. Default Math.random. */
  readonly random?: () => number;
  /** Time constant of the decay, ms. Default 10 s (Finagle's). */
  readonly decayMs?: number;
  /** A failed exchange counts as at least this latency, so a target that fails fast does not attract traffic. */
  readonly failurePenaltyMs?: number;
}

interface Estimate {
  ms: number; // the estimate as of `stamp`
  stamp: number;
  seen: boolean; // false until the first sample
}

// Floor of an estimate, so that (in flight + 1) still separates targets when every estimate is ~0.
const MIN_MS = 1e-3;
// Per-sample weight of the pool average (by count, not time: it only stands in for targets with no samples).
const TYPICAL_ALPHA = 0.05;

export class EwmaBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private estimates: Estimate[] = []; // parallel to targets
  private byKey = new Map<string, Estimate>();
  // The request-weighted average latency over the pool: the neutral estimate of a target whose first
  // requests are still in flight, so it is neither flooded (an estimate of 0) nor shunned (a large default).
  private typicalMs = 0;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly decayMs: number;
  private readonly failurePenaltyMs: number;

  constructor(options: EwmaOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.decayMs = options.decayMs ?? 10_000;
    this.failurePenaltyMs = options.failurePenaltyMs ?? 1_000;
  }

  update(targets: readonly T[]): void {
    // Targets that stay keep what was learned; estimates of targets gone are dropped.
    const byKey = new Map<string, Estimate>();
    for (const t of targets) byKey.set(t.key, this.byKey.get(t.key) ?? { ms: 0, stamp: 0, seen: false });
    this.byKey = byKey;
    this.targets = targets.slice();
    this.estimates = targets.map((t) => byKey.get(t.key)!);
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const targets = this.targets;
    const n = targets.length;
    if (n < 2) return targets[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = targets[i]!;
    const b = targets[j]!;
    if (a === avoid) return b;
    if (b === avoid) return a;
    const now = this.now();
    return this.cost(i, now) <= this.cost(j, now) ? a : b;
  }

  /** Two random targets would be compared by cost: the cheapest of all wins whichever pair includes it. */
  peek(_hash: string): BalancerPeek<T> {
    const n = this.targets.length;
    if (n === 0) return NO_TARGET;
    const now = this.now();
    let best = 0;
    for (let i = 1; i < n; i++) if (this.cost(i, now) < this.cost(best, now)) best = i;
    const e = this.estimates[best]!;
    const t = this.targets[best]!;
    return {
      target: t,
      reason: `two targets at random, the lower latency x load wins; cheapest now: ${e.seen ? `${e.ms.toFixed(1)} ms peak EWMA` : 'not tried yet'}, ${t.active} in flight, weight ${t.weight}`,
    };
  }

  observe(target: T, latencyMs: number, failed: boolean): void {
    const e = this.byKey.get(target.key);
    if (e === undefined) return; // removed since it was picked
    const sample = failed ? Math.max(latencyMs, this.failurePenaltyMs) : latencyMs;
    const now = this.now();
    this.fold(e, sample, now);
    this.typicalMs = this.typicalMs === 0 ? sample : this.typicalMs + (sample - this.typicalMs) * TYPICAL_ALPHA;
  }

  private cost(i: number, now: number): number {
    const t = this.targets[i]!;
    const e = this.estimates[i]!;
    if (!e.seen && t.active === 0) return 0; // not tried yet: send it one request now (Finagle does the same)
    const ms = e.seen ? e.ms * Math.exp(-Math.max(now - e.stamp, 0) / this.decayMs) : this.typicalMs;
    return (Math.max(ms, MIN_MS) * (t.active + 1)) / t.weight;
  }

  private fold(e: Estimate, sample: number, now: number): void {
    const w = Math.exp(-Math.max(now - e.stamp, 0) / this.decayMs);
    const current = e.seen ? e.ms * w : 0;
    // Peak: a higher sample is taken as is; a lower one is averaged in by the time since the last sample.
    e.ms = !e.seen || sample > current ? sample : current + sample * (1 - w);
    e.stamp = now;
    e.seen = true;
  }
}
