import type { Target } from '../target.ts';
import type { Balancer } from './balancer.ts';

export class RoundRobinBalancer implements Balancer {
  private next = 0;

  pick(_ctx: unknown, targets: readonly Target[]): Target | undefined {
    const n = targets.length;
    if (n === 0) return undefined;
    if (this.next >= n) this.next = 0;
    return targets[this.next++];
  }
}
