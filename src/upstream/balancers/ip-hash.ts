// Client-IP affinity (NGINX ip_hash, HAProxy `balance source`): hash of the IP mod a table in which each
// target appears weight/gcd times. The table is built from the targets sorted by key, so the same set maps
// an IP to the same target whatever order the set came in; a change of the set remaps many IPs (use
// consistent-hash when that matters). With no hash ('') it falls back to round robin, as NGINX does for
// clients that have no IP address.
import {
  byKey,
  hash32,
  hex32,
  NO_TARGET,
  weightGcd,
  type BalancedTarget,
  type Balancer,
  type BalancerPeek,
} from './balancer.ts';
import { RoundRobinBalancer } from './round-robin.ts';

export class IpHashBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private table: T[] = [];
  private readonly fallback = new RoundRobinBalancer<T>();

  update(targets: readonly T[]): void {
    const g = weightGcd(targets);
    this.table = [];
    for (const t of byKey(targets)) for (let k = 0; k < t.weight / g; k++) this.table.push(t);
    this.fallback.update(targets);
  }

  peek(hash: string): BalancerPeek<T> {
    const table = this.table;
    if (table.length === 0) return NO_TARGET;
    if (hash === '') {
      const next = this.fallback.peek(hash);
      return { target: next.target, reason: `no hash key: round robin, ${next.reason}` };
    }
    const h = hash32(hash);
    return {
      target: table[h % table.length],
      reason: `hash ${hex32(h)} -> slot ${h % table.length} of ${table.length}`,
    };
  }

  pick(hash: string, avoid?: T): T | undefined {
    const table = this.table;
    if (table.length === 0) return undefined;
    if (hash === '') return this.fallback.pick(hash, avoid);
    let i = hash32(hash) % table.length;
    // A retry takes the next slot that holds another target (a target's slots are adjacent, so at most
    // `weight` steps); with a single target there is none, so it stays.
    for (let k = 0; k < table.length && table[i] === avoid; k++) if (++i === table.length) i = 0;
    return table[i];
  }
}
