// Plain rotation, weights ignored (use weighted-round-robin for weights).
import { NO_TARGET, type BalancedTarget, type Balancer, type BalancerPeek } from './balancer.ts';

export class RoundRobinBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private next = 0;

  update(targets: readonly T[]): void {
    this.targets = targets.slice(); // the caller may reuse its array
  }

  peek(_hash: string): BalancerPeek<T> {
    const n = this.targets.length;
    if (n === 0) return NO_TARGET;
    const i = this.next >= n ? 0 : this.next;
    return { target: this.targets[i], reason: `next in rotation (${i + 1} of ${n}; weights ignored)` };
  }

  pick(_hash: string, avoid?: T): T | undefined {
    const n = this.targets.length;
    if (n === 0) return undefined;
    if (this.next >= n) this.next = 0; // the set may have shrunk
    let t = this.targets[this.next++]!;
    if (t === avoid && n > 1) {
      if (this.next >= n) this.next = 0;
      t = this.targets[this.next++]!;
    }
    return t;
  }
}
