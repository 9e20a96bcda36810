// turnpike_discovery_errors_total{upstream}: discovery rounds whose source failed (a DNS timeout, SERVFAIL); the
// providers publish turnpike:discovery and never touch metrics themselves. A family of its own (metrics.ts).
import type { Channel } from 'node:diagnostics_channel';
import type { Registry } from 'prom-client';
import { CHANNELS, type Gateway } from './events.ts';
import { CounterFamily } from './metrics-series.ts';

/** Makes the family in `registry`; returns the subscription that counts `gateway`'s discovery failures. */
export function discoveryMetrics(registry: Registry, gateway: Gateway): readonly [Channel, (message: unknown) => void] {
  const errors = new CounterFamily(
    'turnpike_discovery_errors_total',
    'Discovery rounds that failed (resolver timeout, SERVFAIL ...), by upstream; the last good targets stay in use',
    registry,
  );
  return [
    CHANNELS.discovery,
    (m) => {
      const e = m as { gateway: Gateway; upstream: string; outcome: string };
      if (e.gateway !== gateway || e.outcome !== 'error') return;
      errors.child(e.upstream, { upstream: e.upstream }).value++;
    },
  ];
}
