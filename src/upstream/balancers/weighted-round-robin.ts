// NGINX's smooth weighted round robin: each pick, every target's current += weight, the largest wins and
// gives back the total. Weights 5:1:1 give a a b a c a a, never a long run on one target.
import { NO_TARGET, weightGcd, weightsOf, type BalancedTarget, type Balancer, type BalancerPeek } from './balancer.ts';

// One cycle of picks (sum of weight/gcd) is precomputed, so pick is O(1), unless the cycle or its O(cycle * n)
// build would be large (weights go up to 1000); then pick runs NGINX's O(n) step live.
const MAX_SCHEDULE = 1 << 16;
const MAX_BUILD_STEPS = 1 << 20;

export class WeightedRoundRobinBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private schedule: Uint32Array | null = null;
  private pos = 0;
  private current = new Float64Array(0); // live mode only

  update(targets: readonly T[]): void {
    this.targets = targets.slice();
    const n = targets.length;
    const g = weightGcd(targets);
    let cycle = 0;
    for (const t of targets) cycle += t.weight / g;
    this.current = new Float64Array(n);
    this.pos = 0;
    if (n === 0 || cycle * n > MAX_BUILD_STEPS || cycle > MAX_SCHEDULE) {
      this.schedule = null;
      return;
    }
    // After one cycle of total/gcd picks every current weight is back to 0, so the cycle repeats exactly.
    this.schedule = new Uint32Array(cycle);
    for (let k = 0; k < cycle; k++) this.schedule[k] = this.step(-1);
    this.current.fill(0);
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const n = this.targets.length;
    if (n === 0) return undefined;
    const schedule = this.schedule;
    if (schedule === null) {
      // Live mode: like NGINX for a tried peer, a retry leaves the avoided target out of the step.
      const skip = avoid !== undefined && n > 1 ? this.targets.indexOf(avoid) : -1;
      return this.targets[this.step(skip)];
    }
    let t: T;
    do {
      t = this.targets[schedule[this.pos]!]!;
      if (++this.pos === schedule.length) this.pos = 0;
    } while (t === avoid && n > 1); // another target appears within the cycle, since every weight >= 1
    return t;
  }

  peek(_hash: string): BalancerPeek<T> {
    const { targets, current, schedule } = this;
    const n = targets.length;
    if (n === 0) return NO_TARGET;
    if (schedule !== null)
      return {
        target: targets[schedule[this.pos]!],
        reason: `smooth weighted round robin, weights ${weightsOf(targets)}: pick ${this.pos + 1} of a ${schedule.length}-pick cycle`,
      };
    // Live mode: the step's choice, on the sums the step would make (nothing written).
    let best = 0;
    for (let i = 1; i < n; i++) if (current[i]! + targets[i]!.weight > current[best]! + targets[best]!.weight) best = i;
    return { target: targets[best], reason: `smooth weighted round robin, weights ${weightsOf(targets)}: next step` };
  }

  /** One smooth-WRR step over all targets but `skip`; returns the chosen index. */
  private step(skip: number): number {
    const { targets, current } = this;
    let best = -1;
    let total = 0;
    for (let i = 0; i < targets.length; i++) {
      if (i === skip) continue;
      const w = targets[i]!.weight;
      current[i]! += w;
      total += w;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return best;
  }
}
