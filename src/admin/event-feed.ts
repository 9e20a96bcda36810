// The event stream as the admin API shows it (GET /api/events, the dashboard's feed): each event of one gateway
// turned into a small, safe JSON object (never a header, a query string, a body or the request context itself),
// filtered by route and upstream.
import { CHANNELS, subscribeAll, type Gateway, type Subscriptions } from '../observability/events.ts';
import type { RequestContext } from '../request-context.ts';

export interface FeedEvent {
  readonly type: 'request' | 'breaker' | 'health' | 'ejection' | 'reload';
  readonly time: string;
  readonly route?: string;
  readonly upstream?: string;
  readonly [field: string]: unknown;
}

export interface FeedFilter {
  readonly route?: string | undefined;
  readonly upstream?: string | undefined;
}

/** Whether `e` passes `f` (an event without the route or upstream a filter names does not). */
export function feedMatches(e: FeedEvent, f: FeedFilter): boolean {
  if (f.route !== undefined && e.route !== f.route) return false;
  if (f.upstream !== undefined && e.upstream !== f.upstream) return false;
  return true;
}

const now = () => new Date().toISOString();

/** Health events name a target by its id, `upstream|origin` (L4 ones `l4|...`). */
function healthEvent(target: string, healthy: boolean): FeedEvent {
  const bar = target.indexOf('|');
  const upstream = bar > 0 && !target.startsWith('l4|') ? target.slice(0, bar) : undefined;
  const origin = bar > 0 ? target.slice(bar + 1) : target;
  return { type: 'health', time: now(), ...(upstream ? { upstream } : {}), target: origin, healthy };
}

/** Calls `send` with each event of `gateway` that passes `filter`; returns the unsubscribe. */
export function subscribeFeed(gateway: Gateway, filter: FeedFilter, send: (e: FeedEvent) => void): () => void {
  const emit = (e: FeedEvent) => {
    if (feedMatches(e, filter)) send(e);
  };
  const subscriptions: Subscriptions = [
    [
      CHANNELS.requestEnd,
      (m) => {
        const { ctx } = m as { ctx: RequestContext };
        if (ctx.gateway !== gateway) return;
        emit({
          type: 'request',
          time: now(),
          requestId: ctx.requestId,
          workerId: gateway.workerId,
          method: ctx.req.method ?? '',
          host: ctx.host,
          path: ctx.path,
          status: ctx.status,
          durationMs: Math.round((performance.now() - ctx.startTime) * 10) / 10,
          ...(ctx.routeName ? { route: ctx.routeName } : {}),
          ...(ctx.upstreamName ? { upstream: ctx.upstreamName } : {}),
          ...(ctx.errorCode ? { code: ctx.errorCode } : {}),
          ...(ctx.cacheStatus ? { cache: ctx.cacheStatus } : {}),
        });
      },
    ],
    [
      CHANNELS.breaker,
      (m) => {
        const e = m as { gateway: Gateway; upstream: string; from: string; to: string };
        if (e.gateway === gateway) emit({ type: 'breaker', time: now(), upstream: e.upstream, from: e.from, to: e.to });
      },
    ],
    [
      CHANNELS.health,
      (m) => {
        const e = m as { gateway: Gateway; target: string; healthy: boolean };
        if (e.gateway === gateway) emit(healthEvent(e.target, e.healthy));
      },
    ],
    [
      CHANNELS.ejection,
      (m) => {
        const e = m as { gateway: Gateway; upstream: string; target: string; ejected: boolean };
        if (e.gateway === gateway)
          emit({ type: 'ejection', time: now(), upstream: e.upstream, target: e.target, ejected: e.ejected });
      },
    ],
    [
      CHANNELS.reload,
      (m) => {
        const e = m as { gateway: Gateway; ok: boolean; version: number; error: string | null };
        if (e.gateway === gateway)
          emit({ type: 'reload', time: now(), ok: e.ok, version: e.version, ...(e.error ? { error: e.error } : {}) });
      },
    ],
  ];
  return subscribeAll(subscriptions);
}
