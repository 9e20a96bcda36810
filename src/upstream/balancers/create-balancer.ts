// The algorithms by the names the config uses.
import { BALANCE_ALGORITHMS } from '../../config/upstream-schema.ts';
import type { BalancedTarget, Balancer } from './balancer.ts';
import { ConsistentHashBalancer } from './consistent-hash.ts';
import { EwmaBalancer } from './ewma.ts';
import { IpHashBalancer } from './ip-hash.ts';
import { LeastConnectionsBalancer } from './least-connections.ts';
import { LeastRequestBalancer } from './least-request.ts';
import { RandomBalancer } from './random.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.ts';

export { BALANCE_ALGORITHMS };

export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

/** A new balancer with no targets yet (call `update`). One per pool: balancers keep state. */
export function createBalancer<T extends BalancedTarget = BalancedTarget>(name: BalanceAlgorithm): Balancer<T> {
  switch (name) {
    case 'round-robin':
      return new RoundRobinBalancer<T>();
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer<T>();
    case 'least-connections':
      return new LeastConnectionsBalancer<T>();
    case 'least-request':
      return new LeastRequestBalancer<T>();
    case 'random':
      return new RandomBalancer<T>();
    case 'ip-hash':
      return new IpHashBalancer<T>();
    case 'consistent-hash':
      return new ConsistentHashBalancer<T>();
    case 'ewma':
      return new EwmaBalancer<T>();
    default: {
      const unknown: never = name;
      throw new Error(`unknown balance algorithm: ${String(unknown)}`);
    }
  }
}
