// turnpike_acme_orders_total{listener,outcome}: ACME orders by how they ended (issued, failed); the managers
// publish turnpike:acme:order and never touch metrics themselves. The certificate's expiry is the listener's
// turnpike_certificate_expiry_seconds, as for certificate files.
import type { Channel } from 'node:diagnostics_channel';
import type { Registry } from 'prom-client';
import { CHANNELS, type Gateway } from './events.ts';
import { CounterFamily } from './metrics-series.ts';

/** Makes the family in `registry`; returns the subscription that counts `gateway`'s orders. */
export function acmeMetrics(registry: Registry, gateway: Gateway): readonly [Channel, (message: unknown) => void] {
  const orders = new CounterFamily(
    'turnpike_acme_orders_total',
    'ACME certificate orders, by listener and outcome (issued, failed: retried with a backoff)',
    registry,
  );
  return [
    CHANNELS.acmeOrder,
    (m) => {
      const e = m as { gateway: Gateway; listener: string; outcome: string };
      if (e.gateway !== gateway) return;
      orders.child(`${e.listener}|${e.outcome}`, { listener: e.listener, outcome: e.outcome }).value++;
    },
  ];
}
