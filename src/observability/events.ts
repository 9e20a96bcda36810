// The one event stream: node:diagnostics_channel channels named `turnpike:*`. The access log, the gateway log and
// (later) metrics, traces and the dashboard subscribe; nothing observable reads globals. Publishing checks
// `hasSubscribers` first, so a channel nobody listens to costs one property read.
//
// Every event carries `gateway` (the Gateway of the runtime that published it: a process may run several, as
// tests do, and each subscriber keeps to its own) and, for request events, `requestId` and `workerId`.
import cluster from 'node:cluster';
import { channel, type Channel } from 'node:diagnostics_channel';
import type { RequestContext } from '../request-context.ts';

/** One running gateway (a Runtime); subscribers compare it to tell their own events from another runtime's. */
export interface Gateway {
  /** The cluster worker id, 0 in a single process or the primary. */
  readonly workerId: number;
}

export function newGateway(): Gateway {
  return { workerId: cluster.worker?.id ?? 0 };
}

export const CHANNELS = {
  /** A request arrived and has a context. { gateway, ctx, requestId, workerId } */
  requestStart: channel('turnpike:request:start'),
  /** A route matched. { gateway, ctx, requestId, workerId, route } */
  routeMatched: channel('turnpike:request:route'),
  /** The exchange is over (response finished or client gone). { gateway, ctx, requestId, workerId } */
  requestEnd: channel('turnpike:request:end'),
  /** A hook or terminal failed the request (500 TP_INTERNAL). { ctx, error } (published by pipeline/guard.ts) */
  requestError: channel('turnpike:request:error'),
  /**
   * One try against one target began. { gateway, ctx, requestId, workerId, target, attempt, headers }: see
   * AttemptStartEvent; a subscriber may add request headers for this try alone (trace context).
   */
  attemptStart: channel('turnpike:attempt:start'),
  /** One try ended. { gateway, ctx, requestId, workerId, upstream, target, attempt, status, durationMs, failure } */
  attemptEnd: channel('turnpike:attempt:end'),
  /** A retry was scheduled. { gateway, ctx, requestId, workerId, target, kind, status } */
  retry: channel('turnpike:attempt:retry'),
  /** A rate limit decided. { gateway, ctx, requestId, workerId, plugin, allowed, remaining, limit } */
  rateLimit: channel('turnpike:ratelimit'),
  /** The cache decided (HIT, MISS, STALE, BYPASS, REVALIDATED). { gateway, ctx, requestId, workerId, status } */
  cache: channel('turnpike:cache'),
  /**
   * A mirror copy was not sent: `queue` (the mirror's in-flight requests at its bound) or `body` (over its
   * maxBodySize). { gateway, ctx, requestId, workerId, upstream, reason }
   */
  mirrorDropped: channel('turnpike:mirror:dropped'),
  /** A circuit breaker changed state. { gateway, upstream, from, to } */
  breaker: channel('turnpike:upstream:breaker'),
  /** A target's health verdict changed. { gateway, target, healthy } */
  health: channel('turnpike:target:health'),
  /** Passive health ejected or returned a target. { gateway, upstream, target, ejected } */
  ejection: channel('turnpike:target:ejection'),
  /** A reload was applied or refused. { gateway, ok, version, error } */
  reload: channel('turnpike:reload'),
  /** An L4 session opened. { gateway, listener, protocol, clientIp } */
  l4Open: channel('turnpike:l4:open'),
  /** An L4 session closed. { gateway, listener, protocol, clientIp, upstream, target, bytesIn, bytesOut, durationMs, error } */
  l4Close: channel('turnpike:l4:close'),
  /**
   * A client was refused before a request context existed (unparsable HTTP/1 bytes, a malformed HTTP/2 stream or
   * session, a TLS handshake, a connection limit). { gateway, listener, protocol, clientIp, code }
   */
  refused: channel('turnpike:client:refused'),
  /** A connection was admitted by a listener (open: true) or closed (open: false). { gateway, listener, protocol, open } */
  connection: channel('turnpike:client:connection'),
  /**
   * A listener's certificates were loaded or reloaded (an empty list: the listener closed).
   * { gateway, listener, certificates: { names, validTo }[] }
   */
  certificates: channel('turnpike:tls:certificates'),
  /**
   * A discovery provider's round for an upstream: `resolved` (a set applied: its targets), `empty` (no records;
   * the last set stays until emptyGrace), or `error` (the source failed; the last set stays).
   * `refused`: the origins the block's allowNetworks/denyNetworks dropped from this answer (when any).
   * { gateway, upstream, provider, outcome: 'resolved' | 'empty' | 'error', targets?, error?, refused? }
   */
  discovery: channel('turnpike:discovery'),
  /** An ACME order of a listener's certificate ended. { gateway, listener, outcome: 'issued' | 'failed' } */
  acmeOrder: channel('turnpike:acme:order'),
} as const;

export interface ConnectionEvent {
  readonly gateway: Gateway;
  readonly listener: string;
  /** The listener's protocol (http, https). */
  readonly protocol: string;
  readonly open: boolean;
}

export interface CertificatesEvent {
  readonly gateway: Gateway;
  readonly listener: string;
  readonly certificates: readonly { readonly names: readonly string[]; readonly validTo: string }[];
}

/** A subscriber's table: each channel with its handler. */
export type Subscriptions = ReadonlyArray<readonly [Channel, (message: unknown) => void]>;

/** Subscribes every handler of `subscriptions`; the returned function unsubscribes them all. */
export function subscribeAll(subscriptions: Subscriptions): () => void {
  for (const [ch, fn] of subscriptions) ch.subscribe(fn);
  return () => {
    for (const [ch, fn] of subscriptions) ch.unsubscribe(fn);
  };
}

export interface RefusalEvent {
  readonly gateway: Gateway;
  readonly listener: string;
  /** What the client spoke: http/1.1, h2, tls or tcp (refused before any protocol). */
  readonly protocol: 'http/1.1' | 'h2' | 'tls' | 'tcp';
  readonly clientIp: string;
  /** The stable code (TP_*) the refusal answered or would have answered with. */
  readonly code: string;
}

/** Publishes a refusal (the access log writes one line per refusal). */
export function publishRefusal(event: RefusalEvent): void {
  if (CHANNELS.refused.hasSubscribers) CHANNELS.refused.publish(event);
}

export interface RequestEvent {
  readonly gateway: Gateway;
  readonly ctx: RequestContext;
  readonly requestId: string;
  readonly workerId: number;
}

/**
 * Publishes a request event with its common fields. `extra` must be a fresh object literal made for this call:
 * the common fields are added to it in place (an object spread here cost ~0.5 µs per event, a share of a
 * proxied request's CPU once metrics subscribe to the per-request channels).
 */
export function publishRequest(
  ch: (typeof CHANNELS)[keyof typeof CHANNELS],
  ctx: RequestContext,
  extra?: object,
): void {
  if (!ch.hasSubscribers) return;
  const gateway = ctx.gateway;
  // The common case (request start and end): one fixed-shape object per event.
  if (extra === undefined) {
    ch.publish({ gateway, ctx, requestId: ctx.requestId, workerId: gateway.workerId });
    return;
  }
  const event = extra as { gateway: Gateway; ctx: RequestContext; requestId: string; workerId: number };
  event.gateway = gateway;
  event.ctx = ctx;
  event.requestId = ctx.requestId;
  event.workerId = gateway.workerId;
  ch.publish(event);
}

/**
 * Publishes turnpike:attempt:start for one try to `target` (every caller that sends to a target: the forwarder, a
 * WebSocket tunnel, an aggregate's calls). Returns the headers subscribers added for that try, or null when the
 * channel has none; `attempt` must be unique within the request (an aggregate's calls share one numbering).
 */
export function publishAttemptStart(
  ctx: RequestContext,
  target: string,
  attempt: number,
  path: string = ctx.path,
  resend: number = attempt - 1,
  method: string = ctx.req.method ?? 'GET',
): string[] | null {
  if (!CHANNELS.attemptStart.hasSubscribers) return null;
  const headers: string[] = [];
  publishRequest(CHANNELS.attemptStart, ctx, { target, attempt, path, resend, method, headers });
  return headers;
}

/**
 * turnpike:attempt:end for the try `publishAttemptStart` began; `status` 0 when no answer came. `upstream` names the
 * target's upstream (an aggregate's calls go to other upstreams than the route's).
 */
export function publishAttemptEnd(
  ctx: RequestContext,
  upstream: string,
  target: string,
  attempt: number,
  status: number,
  durationMs: number,
  failure: string | null,
): void {
  if (CHANNELS.attemptEnd.hasSubscribers)
    publishRequest(CHANNELS.attemptEnd, ctx, { upstream, target, attempt, status, durationMs, failure });
}

/**
 * turnpike:attempt:start. Published before the try's upstream request head is built, so a subscriber may add
 * headers to that try alone: the traces' `traceparent` names the try's client span, a new one per retry. Each
 * name pushed replaces the client's header of that name. The list exists only when the channel has subscribers.
 */
export interface AttemptStartEvent extends RequestEvent {
  /** The target's URL (origin). */
  readonly target: string;
  /** 1 for the first try, 2 for the first retry, ... (unique within the request) */
  readonly attempt: number;
  /** The path sent (no query: it may carry a credential). */
  readonly path: string;
  /** How many tries of the same call came before this one (0: the first). */
  readonly resend: number;
  /** The method sent (an aggregate's calls have their own). */
  readonly method: string;
  /** Headers for this try: [name, value, name, value, ...], names lowercase. */
  readonly headers: string[];
}

export interface L4SessionEvent {
  readonly gateway: Gateway;
  readonly listener: string;
  readonly protocol: 'tcp' | 'udp';
  readonly clientIp: string;
  readonly upstream: string;
  readonly target: string | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly error: string | null;
}
