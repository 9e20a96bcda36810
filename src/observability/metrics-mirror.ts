// turnpike_mirror_dropped_total{route, reason}: mirror copies not sent (the mirror plugin publishes
// turnpike:mirror:dropped), a family of its own beside the gateway's metrics (metrics.ts).
import type { Channel } from 'node:diagnostics_channel';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../request-context.ts';
import { CHANNELS, type Gateway } from './events.ts';
import { NO_ROUTE } from './metrics-labels.ts';
import { CounterFamily } from './metrics-series.ts';

/** Makes the family in `registry`; returns the subscription that counts `gateway`'s drops. */
export function mirrorMetrics(registry: Registry, gateway: Gateway): readonly [Channel, (message: unknown) => void] {
  const dropped = new CounterFamily(
    'turnpike_mirror_dropped_total',
    'Mirror copies not sent, by route and reason (queue: the mirror queue was full; body: over its maxBodySize)',
    registry,
  );
  return [
    CHANNELS.mirrorDropped,
    (m) => {
      const e = m as { gateway: Gateway; ctx: RequestContext; reason: string };
      if (e.gateway !== gateway) return;
      const route = e.ctx.routeName === '' ? NO_ROUTE : e.ctx.routeName;
      dropped.child(`${route}\0${e.reason}`, { route, reason: e.reason }).value++;
    },
  ];
}
