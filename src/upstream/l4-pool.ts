// An upstream of tcp:// or udp:// targets: the same balancers as HTTP pools, over plain host:port targets.
import type { UpstreamConfig } from '../config/schema.ts';
import type { L4Picker, L4Target } from '../l4/tcp-proxy.ts';
import type { Balancer } from './balancers/balancer.ts';
import { createBalancer } from './balancers/create-balancer.ts';

export interface L4PoolTarget extends L4Target {
  readonly weight: number;
  readonly backup: boolean;
}

export class L4Pool implements L4Picker {
  readonly name: string;
  readonly targets: readonly L4PoolTarget[];
  private readonly balancer: Balancer<L4PoolTarget>;
  private readonly backups: Balancer<L4PoolTarget>;
  private readonly byClientIp: boolean;

  constructor(name: string, config: UpstreamConfig) {
    this.name = name;
    this.targets = config.targets.map((t) => {
      const url = new URL(t.url);
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      return { key: `${host}:${url.port}`, host, port: Number(url.port), active: 0, weight: t.weight, backup: t.backup };
    });
    this.balancer = createBalancer<L4PoolTarget>(config.balance);
    this.balancer.update(this.targets.filter((t) => !t.backup));
    this.backups = createBalancer<L4PoolTarget>('round-robin');
    this.backups.update(this.targets.filter((t) => t.backup));
    // ip-hash and consistent-hash hash the client address (the only request attribute L4 has).
    this.byClientIp = config.balance === 'ip-hash' || config.balance === 'consistent-hash';
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
