// Plain rotation, weights ignored (use weighted-round-robin for weights).
import type { BalancedTarget, Balancer } from './balancer.ts';

export class RoundRobinBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private next = 0;

  update(targets: readonly T[]): void {
    this.targets = targets.slice(); // the caller may reuse its array
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
