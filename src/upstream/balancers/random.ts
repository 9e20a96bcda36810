// Weighted random: cumulative weights and a binary search, O(log n).
import { NO_TARGET, type BalancedTarget, type Balancer, type BalancerPeek, type RandomOptions } from './balancer.ts';

export class RandomBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private cumulative = new Float64Array(0); // cumulative[i] = weights of targets 0..i
  private index = new Map<T, number>(); // to find an avoided target without a scan
  private readonly random: () => number;

  constructor(options: RandomOptions = {}) {
    this.random = options.random ?? Math.random;
  }

  update(targets: readonly T[]): void {
    this.targets = targets.slice();
    this.cumulative = new Float64Array(targets.length);
    this.index = new Map();
    let sum = 0;
    targets.forEach((t, i) => {
      this.cumulative[i] = sum += t.weight;
      this.index.set(t, i);
    });
  }

  /** A draw is random: the odds, not a target (drawing here would spend a number of the source). */
  peek(_hash: string): BalancerPeek<T> {
    const n = this.targets.length;
    if (n === 0) return NO_TARGET;
    const total = this.cumulative[n - 1]!;
    return {
      target: undefined,
      reason: 'random, by weight',
      chances: this.targets.map((target) => ({ target, share: target.weight / total })),
    };
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const n = this.targets.length;
    if (n === 0) return undefined;
    const cum = this.cumulative;
    const skip = avoid !== undefined && n > 1 ? (this.index.get(avoid) ?? -1) : -1;
    let r: number;
    if (skip < 0) r = this.random() * cum[n - 1]!;
    else {
      // Draw over the total without the avoided weight, then step over its slice of the line.
      const from = skip === 0 ? 0 : cum[skip - 1]!;
      const w = cum[skip]! - from;
      r = this.random() * (cum[n - 1]! - w);
      if (r >= from) r += w;
    }
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.targets[lo];
  }
}
