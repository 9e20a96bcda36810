// Fewest requests in flight per unit of weight. Scans all targets (n is small); the scan starts just after
// the last target chosen, so equally loaded targets take turns (starting one further each pick instead would
// give the target after a busy one its turn too, twice its share).
import { NO_TARGET, type BalancedTarget, type Balancer, type BalancerPeek } from './balancer.ts';

export class LeastConnectionsBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private start = 0;

  update(targets: readonly T[]): void {
    this.targets = targets.slice();
  }

  peek(_hash: string): BalancerPeek<T> {
    const targets = this.targets;
    const n = targets.length;
    if (n === 0) return NO_TARGET;
    // The scan pick makes, from where the last pick left it, without moving the start.
    let i = this.start < n ? this.start : 0;
    let best = -1;
    for (let k = 0; k < n; k++, i++) {
      if (i === n) i = 0;
      const t = targets[i]!;
      if (best < 0 || t.active * targets[best]!.weight < targets[best]!.active * t.weight) best = i;
    }
    const t = targets[best]!;
    return { target: t, reason: `fewest in flight per weight: ${t.active} in flight, weight ${t.weight}` };
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const targets = this.targets;
    const n = targets.length;
    if (n === 0) return undefined;
    if (n === 1) return targets[0];
    let i = this.start < n ? this.start : 0;
    let best = -1;
    for (let k = 0; k < n; k++, i++) {
      if (i === n) i = 0;
      const t = targets[i]!;
      if (t === avoid) continue;
      // t.active / t.weight < b.active / b.weight, without division
      if (best < 0 || t.active * targets[best]!.weight < targets[best]!.active * t.weight) best = i;
    }
    this.start = best + 1;
    return targets[best];
  }
}
