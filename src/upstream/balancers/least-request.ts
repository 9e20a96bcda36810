// Power of two choices (Envoy's default least_request): two distinct random targets, the one with fewer
// requests in flight per unit of weight wins. Nearly as good as a full scan, O(1), and it does not herd
// every worker onto the same "least" target the way a scan on stale counts does.
import { NO_TARGET, type BalancedTarget, type Balancer, type BalancerPeek, type RandomOptions } from './balancer.ts';

export class LeastRequestBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private readonly random: () => number;

  constructor(options: RandomOptions = {}) {
    this.random = options.random ?? Math.random;
  }

  update(targets: readonly T[]): void {
    this.targets = targets.slice();
  }

  /** Two random targets would be compared: the least loaded of all wins whichever pair includes it. */
  peek(_hash: string): BalancerPeek<T> {
    const targets = this.targets;
    if (targets.length === 0) return NO_TARGET;
    let best = targets[0]!;
    for (const t of targets) if (t.active * best.weight < best.active * t.weight) best = t;
    return {
      target: best,
      reason: `two targets at random, the one with fewer in flight per weight wins; least loaded now: ${best.active} in flight, weight ${best.weight}`,
    };
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const targets = this.targets;
    const n = targets.length;
    if (n < 2) return targets[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++; // distinct from i, still uniform
    const a = targets[i]!;
    const b = targets[j]!;
    if (a === avoid) return b; // the pair is distinct, so at most one of them is avoided
    if (b === avoid) return a;
    return a.active * b.weight <= b.active * a.weight ? a : b; // ties: a, itself random
  }
}
