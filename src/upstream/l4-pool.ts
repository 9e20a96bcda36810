// An upstream of tcp:// or udp:// targets: the same balancers as HTTP pools, over plain host:port targets.
import type { UpstreamConfig } from '../config/schema.ts';
import type { L4Picker, L4Target } from '../l4/tcp-proxy.ts';
import type { Balancer } from './balancers/balancer.ts';
import { createBalancer } from './balancers/create-balancer.ts';
import { l4TargetId } from './target-id.ts';

export interface L4PoolTarget extends L4Target {
  readonly weight: number;
  readonly backup: boolean;
  /** Health id, shared with the active checker (and the primary's, with workers). */
  readonly id: string;
}

/** Health verdicts by target id; a target without one is healthy. */
export type HealthLookup = (id: string) => boolean | undefined;

export class L4Pool implements L4Picker {
  readonly name: string;
  readonly targets: readonly L4PoolTarget[];
  /** PROXY protocol version sent to the targets before the client's bytes, if any. */
  readonly proxyProtocol: 'v1' | 'v2' | undefined;
  private readonly balancer: Balancer<L4PoolTarget>;
  private readonly backups: Balancer<L4PoolTarget>;
  private readonly byClientIp: boolean;

  private readonly health: HealthLookup;

  constructor(name: string, config: UpstreamConfig, health: HealthLookup) {
    this.name = name;
    this.health = health;
    this.proxyProtocol = config.proxyProtocol;
    this.targets = config.targets.map((t) => {
      const url = new URL(t.url);
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      return {
        key: `${host}:${url.port}`,
        host,
        port: Number(url.port),
        active: 0,
        weight: t.weight,
        backup: t.backup,
        id: l4TargetId(name, url),
      };
    });
    this.balancer = createBalancer<L4PoolTarget>(config.balance);
    this.backups = createBalancer<L4PoolTarget>('round-robin');
    this.refresh();
    // ip-hash and consistent-hash hash the client address (the only request attribute L4 has).
    this.byClientIp = config.balance === 'ip-hash' || config.balance === 'consistent-hash';
  }

  /** Recomputes the usable targets after a health verdict changed (never per connection). */
  refresh(): void {
    const healthy = (t: L4PoolTarget) => this.health(t.id) !== false;
    this.balancer.update(this.targets.filter((t) => !t.backup && healthy(t)));
    this.backups.update(this.targets.filter((t) => t.backup && healthy(t)));
  }

  pick(clientIp: string, avoid?: L4Target): L4Target | undefined {
    const target = this.balancer.pick(this.byClientIp ? clientIp : '', avoid as L4PoolTarget | undefined);
    if (target !== undefined && target !== avoid) return target;
    return this.backups.pick('', avoid as L4PoolTarget | undefined) ?? target;
  }

  observe(target: L4Target, latencyMs: number, failed: boolean): void {
    this.balancer.observe?.(target as L4PoolTarget, latencyMs, failed);
  }
}
