// The gateway's own log as a subscriber of the event stream: requests a hook or terminal failed (with the
// stack), circuit breaker transitions, target ejections and health changes.
import type { Logger } from 'pino';
import { CHANNELS, subscribeAll, type Gateway, type Subscriptions } from './events.ts';
import type { RequestContext } from '../request-context.ts';

/** Subscribes `log` to `gateway`'s events; returns the unsubscribe. */
export function subscribeGatewayLog(gateway: Gateway, log: Logger): () => void {
  const own = (m: unknown) =>
    (m as { gateway?: Gateway; ctx?: RequestContext }).gateway === gateway ||
    (m as { ctx?: RequestContext }).ctx?.gateway === gateway;
  const subscriptions: Subscriptions = [
    [
      CHANNELS.requestError,
      (m) => {
        if (!own(m)) return;
        const { ctx, error } = m as { ctx: RequestContext; error: unknown };
        const err = error instanceof Error ? error : new Error(String(error));
        log.error(
          { requestId: ctx.requestId, route: ctx.routeName, error: err.message, stack: err.stack },
          'request failed inside the gateway (500 TP_INTERNAL)',
        );
      },
    ],
    [
      CHANNELS.breaker,
      (m) => {
        if (!own(m)) return;
        const { upstream, from, to } = m as { upstream: string; from: string; to: string };
        (to === 'open' ? log.warn : log.info).call(log, { upstream, from, to }, `circuit breaker ${to}`);
      },
    ],
    [
      CHANNELS.ejection,
      (m) => {
        if (!own(m)) return;
        const { upstream, target, ejected } = m as { upstream: string; target: string; ejected: boolean };
        (ejected ? log.warn : log.info).call(
          log,
          { upstream, target },
          ejected ? 'target ejected (passive health)' : 'target returned after ejection',
        );
      },
    ],
    [
      CHANNELS.health,
      (m) => {
        if (!own(m)) return;
        const { target, healthy } = m as { target: string; healthy: boolean };
        (healthy ? log.info : log.warn).call(log, { target, healthy }, healthy ? 'target healthy' : 'target unhealthy');
      },
    ],
  ];
  return subscribeAll(subscriptions);
}
