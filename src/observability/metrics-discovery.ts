// turnpike_discovery_errors_total{upstream}: discovery rounds whose source failed (a DNS timeout, SERVFAIL), and
// turnpike_discovery_refused_total{upstream}: discovered addresses allowNetworks/denyNetworks refused, per round; the
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
  const refused = new CounterFamily(
    'turnpike_discovery_refused_total',
    "Discovered addresses dropped by the discover block's allowNetworks/denyNetworks (each round), by upstream",
    registry,
  );
  return [
    CHANNELS.discovery,
    (m) => {
      const e = m as { gateway: Gateway; upstream: string; outcome: string; refused?: readonly string[] };
      if (e.gateway !== gateway) return;
      if (e.outcome === 'error') errors.child(e.upstream, { upstream: e.upstream }).value++;
      if (e.refused !== undefined && e.refused.length > 0)
        refused.child(e.upstream, { upstream: e.upstream }).value += e.refused.length;
    },
  ];
}
