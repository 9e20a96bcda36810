// The forwarder's hot path: one undici dispatch per attempt, streaming both ways with backpressure; retries,
// the circuit breaker and passive health around it. An Exchange is one client request; an Attempt one try.
import type { Transform, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.ts';
import { appendSetCookie } from '../http/header-list.ts';
import { finishHead, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { CHANNELS, publishAttemptEnd, publishAttemptStart, publishRequest } from '../observability/events.ts';
import type { ConnectClock } from '../upstream/connect-timing.ts';
import { sendProblem, sendReply } from '../pipeline/reply.ts';
import { ResponseBody, type BodyTap, type RequestContext, type ResponseHead } from '../request-context.ts';
import type { Target } from '../upstream/target.ts';
import type { Lease, UpstreamPool } from '../upstream/pool.ts';
import { clientResponseHeaders, upstreamRequestHeaders, type UpstreamHeaderPolicy } from './headers.ts';
import { HeldResponse } from './held-response.ts';
import { BadResponseError, cut, headSize, isChunkedOnly } from './response-checks.ts';
import { backoffDelay, covers, failureKindOf, repeatable, type FailureKind, type RetryPolicy } from './retry-policy.ts';

/** What the forwarder needs from a compiled route. */
export interface ForwardRoute extends UpstreamHeaderPolicy {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  readonly maxBodySize: number;
  /** Time allowed until the upstream's response head (bounded by the route's requestTimeout). */
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /** Idle time allowed between reads of the client's body (0: off): NGINX's client_body_timeout. */
  readonly clientBodyTimeout: number;
  /** Time a response may wait for the client to read it (0: off): NGINX's send_timeout. */
  readonly sendTimeout: number;
  /** The whole exchange, retries included (0: unbounded). */
  readonly totalTimeout: number;
  readonly retry: RetryPolicy;
}

/** RST_STREAM's CANCEL (RFC 9113 §7). */
const H2_CANCEL = 0x8;

class BodyTooLargeError extends Error {
  readonly code = 'TP_BODY_TOO_LARGE';
}

/** Sends the request on once the upstream's admission (maxRequests, queue) lets it through. */
export function forward(ctx: RequestContext, route: ForwardRoute): void {
  const admission = route.pool.admission;
  if (admission.tryEnter()) return admitted(ctx, route);
  // Queued: only here are closures made (the common path above allocates nothing).
  const res = ctx.res;
  const onClose = (): void => admission.cancel(waiter!);
  const waiter = admission.enqueue(
    () => {
      res.off('close', onClose);
      admitted(ctx, route);
    },
    () => {
      res.off('close', onClose);
      overloaded(ctx, route);
    },
  );
  if (waiter === null) return overloaded(ctx, route);
  res.once('close', onClose);
}

function overloaded(ctx: RequestContext, route: ForwardRoute): void {
  // A stored response may stand in, as while the breaker is open (the cache's stale-if-error).
  const stored = ctx.overrideUpstream(0, null);
  ctx.errorCode = 'TP_UPSTREAM_OVERLOADED';
  if (stored !== undefined) return sendReply(ctx, route.chain, stored);
  sendProblem(ctx, route.chain, 'TP_UPSTREAM_OVERLOADED', undefined, { 'retry-after': '1' });
}

function admitted(ctx: RequestContext, route: ForwardRoute): void {
  const pool = route.pool;
  if (!pool.admit()) {
    pool.admission.leave();
    // A stored response may stand in while the breaker is open (the cache's stale-if-error).
    const stored = ctx.overrideUpstream(0, null);
    if (stored !== undefined) {
      ctx.errorCode = 'TP_CIRCUIT_OPEN';
      return sendReply(ctx, route.chain, stored);
    }
    const retryAfter = String(pool.retryAfterSeconds());
    sendProblem(ctx, route.chain, 'TP_CIRCUIT_OPEN', undefined, { 'retry-after': retryAfter });
    return;
  }
  const headers = ctx.req.headers;
  const length = headers['content-length'];
  // HTTP/2 has no transfer-encoding: a body without content-length (every gRPC call) shows only as a HEADERS
  // frame without END_STREAM.
  const h2 = (ctx.req as { stream?: { endAfterHeaders?: boolean } }).stream;
  const hasBody =
    ctx.requestBody !== null ||
    headers['transfer-encoding'] !== undefined ||
    (length !== undefined && length !== '0') ||
    (length === undefined && h2?.endAfterHeaders === false);
  const exchange = new Exchange(ctx, route, hasBody);
  // A body a plugin rewrote (read whole) is sent as it is, and a retry may resend it.
  if (ctx.requestBody !== null) {
    exchange.body = ctx.requestBody;
    exchange.start();
  }
  // A small body of an idempotent request is kept so that a retry after it reached a backend can resend it.
  else if (
    hasBody &&
    route.retry.bufferBody > 0 &&
    repeatable(route.retry, ctx.req.method!, headers) &&
    length !== undefined &&
    headers['transfer-encoding'] === undefined &&
    ctx.requestBodyStream === null &&
    Number(length) <= route.retry.bufferBody
  ) {
    exchange.bufferThenStart(Number(length));
  } else {
    exchange.start();
  }
}

class Exchange {
  readonly ctx: RequestContext;
  readonly route: ForwardRoute;
  readonly hasBody: boolean;
  /** The kept request body (a retry may resend it), or null when the body streams from the client. */
  body: Buffer | null = null;
  attempt: Attempt | null = null;
  tries = 0;
  /** Tries that failed to connect and so used up no attempt (at most one per target of the pool). */
  private refused = 0;
  done = false;
  private retrying = false;
  private timer: NodeJS.Timeout | null = null;
  /** Armed while the client's body is being read (clientBodyTimeout); refreshed by each chunk. */
  private bodyTimer: NodeJS.Timeout | null = null;

  constructor(ctx: RequestContext, route: ForwardRoute, hasBody: boolean) {
    this.ctx = ctx;
    this.route = route;
    this.hasBody = hasBody;
    route.pool.retryBudget.requestStarted();
    ctx.res.once('close', this.onClientClose);
    if (route.totalTimeout > 0) {
      this.timer = setTimeout(this.onTotalTimeout, route.totalTimeout);
    }
    if (hasBody && route.clientBodyTimeout > 0) {
      // Refreshed where the body is read (onBodySent, bufferThenStart): a 'data' listener here would start the
      // stream flowing before undici reads it.
      this.bodyTimer = setTimeout(this.onBodyIdle, route.clientBodyTimeout);
      ctx.req.once('end', this.onBodyEnd);
    }
  }

  /** A chunk of the client's body was read. */
  bodyRead(): void {
    this.bodyTimer?.refresh();
  }

  private readonly onBodyEnd = (): void => {
    if (this.bodyTimer !== null) clearTimeout(this.bodyTimer);
    this.bodyTimer = null;
  };

  /** The client sent no body bytes for clientBodyTimeout while the gateway was reading: 408, upstream aborted. */
  private readonly onBodyIdle = (): void => {
    const req = this.ctx.req;
    if (this.done || this.bodyTimer === null || req.readableEnded) return;
    // Not reading (the upstream is still connecting, or pushes back): the wait is not the client's.
    if (req.readableFlowing !== true) {
      this.bodyTimer.refresh();
      return;
    }
    this.bodyTimer = null;
    this.attempt?.abandon();
    this.fail('TP_REQUEST_TIMEOUT');
  };

  bufferThenStart(length: number): void {
    const chunks: Buffer[] = [];
    let received = 0;
    const req = this.ctx.req;
    req.on('data', (c: Buffer) => {
      this.bodyRead();
      received += c.length;
      if (received <= length) chunks.push(c);
    });
    req.once('end', () => {
      if (this.done) return;
      this.body = Buffer.concat(chunks);
      this.ctx.bytesIn = this.body.length;
      this.start();
    });
  }

  start(avoid?: Target): void {
    const ctx = this.ctx;
    const lease = this.route.pool.begin(ctx, avoid);
    if (lease === undefined) return this.fail('TP_NO_HEALTHY_TARGET');
    const target = lease.target;
    this.tries++;
    ctx.target = target.url;
    ctx.attempts = this.tries;
    ctx.upstreamConnectMs = -1;
    ctx.upstreamHeadersMs = -1;
    this.attempt = new Attempt(this, lease, this.tries, target.clock);
    // Subscribers may add headers for this try alone (AttemptStartEvent: a trace's traceparent).
    const attemptHeaders = publishAttemptStart(ctx, target.url, this.tries);
    target.dispatcher.dispatch(
      {
        path: ctx.path + ctx.query,
        method: ctx.req.method!,
        headers: upstreamRequestHeaders(ctx, this.route, target.origin.host, false, attemptHeaders),
        body: !this.hasBody ? null : (this.body ?? ctx.requestBodyStream ?? ctx.req),
        headersTimeout: this.route.headersTimeout,
        bodyTimeout: this.route.bodyTimeout,
      },
      this.attempt,
    );
  }

  /**
   * An attempt failed before anything reached the client: retry when the policy, the method, the body and
   * the budget allow it, else answer with the error. Returns true when a retry was scheduled.
   */
  maybeRetry(failed: Attempt, kind: FailureKind, status: number): boolean {
    const policy = this.route.retry;
    // A refused connect sent nothing anywhere: it does not use up an attempt while other targets may take the
    // request, so a dead target met between two retries never turns a request away while a live one exists.
    if (kind === 'connect-failure' && this.refused < this.route.pool.targets.length - 1 && covers(policy, kind, 0))
      this.refused++;
    if (this.done || this.tries - this.refused > policy.attempts || !covers(policy, kind, status)) return false;
    // Past a connect failure the request may have reached the backend: only idempotent methods, and only
    // with the body still in hand (a streamed body is gone once sent).
    const reachedBackend = kind !== 'connect-failure' || this.ctx.bytesIn > 0;
    const req = this.ctx.req;
    if (reachedBackend && (!repeatable(policy, req.method!, req.headers) || (this.hasBody && this.body === null)))
      return false;
    // The budget guards backends against retry storms; a connect failure put no load on any backend, so its
    // retry is not counted (a dead target must not make live ones fail while health checks catch up).
    if (reachedBackend) {
      const budget = this.route.pool.retryBudget;
      if (budget !== null && !budget.tryStartRetry()) return false;
      if (this.retrying) budget?.retryEnded();
      this.retrying = true;
    }
    publishRequest(CHANNELS.retry, this.ctx, { target: failed.lease.target.url, kind, status });
    const delay = backoffDelay(policy, this.tries);
    if (delay === 0) this.start(failed.lease.target);
    else setTimeout(() => (this.done ? undefined : this.start(failed.lease.target)), delay).unref();
    return true;
  }

  /** Answers the client with a gateway error (nothing was sent yet) and ends the exchange. */
  fail(code: ErrorCode): void {
    if (this.done) return;
    this.finish(true);
    const res = this.ctx.res;
    if (res.destroyed) return;
    if (res.headersSent) {
      this.ctx.errorCode = code;
      cut(res);
      return;
    }
    // The client's own fault: no stored answer stands in, and its unread body makes the connection unusable.
    if (code === 'TP_BODY_TOO_LARGE' || code === 'TP_REQUEST_TIMEOUT' || code === 'TP_BAD_REQUEST')
      res.shouldKeepAlive = false;
    else {
      const reply = this.ctx.overrideUpstream(0, null);
      if (reply !== undefined) {
        this.ctx.errorCode = code; // logged: the client got a stored response, the upstream failed
        return sendReply(this.ctx, this.route.chain, reply);
      }
    }
    sendProblem(this.ctx, this.route.chain, code);
  }

  finish(failed: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.bodyTimer !== null) clearTimeout(this.bodyTimer);
    this.bodyTimer = null;
    const pool = this.route.pool;
    pool.admission.leave();
    pool.settle(failed);
    pool.retryBudget.requestEnded();
    if (this.retrying) pool.retryBudget.retryEnded();
  }

  /** The client went away (or the response finished): stop the upstream side if it is still running. */
  readonly onClientClose = (): void => {
    if (this.done) return;
    this.finish(false);
    this.attempt?.abort();
    if (this.ctx.status === 0) this.ctx.status = 499; // NGINX's "client closed request", for the log only
  };

  private readonly onTotalTimeout = (): void => {
    this.timer = null;
    if (this.done) return;
    this.attempt?.abandon();
    this.fail('TP_UPSTREAM_TIMEOUT');
  };
}

/** One try against one target: the undici handler. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly exchange: Exchange;
  /** The target this try went to, counted on it until the try ends. */
  readonly lease: Lease;
  /** 1 for the first try, 2 for the first retry (a retry may start before this try's end is published). */
  readonly number: number;
  /** The clock of the pool this try was dispatched on (the target may move to a new pool meanwhile). */
  private readonly clock: ConnectClock;
  private readonly started = performance.now();
  private controller: Dispatcher.DispatchController | null = null;
  /** This attempt no longer speaks for the exchange (a retry or a timeout took over). */
  private abandoned = false;
  private ended = false;
  private drainListener: (() => void) | null = null;
  /** The client is not taking what we write (backpressure): sendTimeout runs meanwhile. */
  private blocked = false;
  private sendTimer: NodeJS.Timeout | null = null;
  /** The upstream's status (0 before its head), and why the attempt failed (null: it did not), for events. */
  private status = 0;
  private failure: FailureKind | 'client-gone' | 'abandoned' | null = null;
  /** The status of a gRPC "trailers-only" upstream response, to be sent to the client as trailers. */
  private grpcStatus: Record<string, string> | null = null;
  /** Where body chunks go: the first body stage, or the client. */
  private sink: Writable | null = null;
  private stages: Transform[] | null = null;
  private taps: BodyTap[] | null = null;
  private trailerSink: ((trailers: Record<string, string>) => void) | null = null;
  /** The response while a plugin's whole-body stage waits for all of it (the head is not written yet), or null. */
  private held: HeldResponse | null = null;

  constructor(exchange: Exchange, lease: Lease, number: number, clock: ConnectClock) {
    this.exchange = exchange;
    this.lease = lease;
    this.number = number;
    this.clock = clock;
  }

  /** A write to the client returned false: reading from upstream is paused; the client has sendTimeout to read. */
  private block(): void {
    this.blocked = true;
    const timeout = this.exchange.route.sendTimeout;
    if (timeout === 0) return;
    if (this.sendTimer === null) this.sendTimer = setTimeout(this.onSendTimeout, timeout);
    else this.sendTimer.refresh();
  }

  private readonly onSendTimeout = (): void => {
    const ctx = this.exchange.ctx;
    if (!this.blocked || ctx.res.destroyed || ctx.res.writableFinished) return;
    ctx.errorCode = 'TP_SEND_TIMEOUT';
    // Cutting the response closes it: the exchange then aborts this upstream request. HTTP/2 cuts the stream
    // alone, with CANCEL (a reset with NO_ERROR could pass for a complete response).
    const stream = (ctx.res as { stream?: { close(code: number): void } }).stream;
    if (stream !== undefined) stream.close(H2_CANCEL);
    else ctx.res.destroy();
  };

  abort(): void {
    this.failure ??= 'client-gone';
    this.abandoned = true;
    this.controller?.abort(new Error('client closed the connection'));
    this.end();
  }

  abandon(): void {
    this.failure ??= 'abandoned';
    this.abandoned = true;
    this.controller?.abort(new Error('abandoned'));
    this.end();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Called while undici writes the request: inside the pool's connector callback when on a new connection.
    if (!this.abandoned) this.exchange.ctx.upstreamConnectMs = this.clock.waited(this.started);
    if (this.abandoned || this.exchange.done) controller.abort(new Error('client closed the connection'));
  }

  onBodySent(chunk: Buffer): void {
    const ctx = this.exchange.ctx;
    if (this.exchange.body !== null) return; // a kept body was counted when it was read
    this.exchange.bodyRead();
    ctx.bytesIn += chunk.length;
    if (ctx.bytesIn > this.exchange.route.maxBodySize) throw new BodyTooLargeError('request body exceeds maxBodySize');
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200 || this.abandoned) return; // 1xx interim responses are not relayed (101: upgrade tunnel)
    // Only `chunked` alone frames a body undici can read: another coding would be relayed still encoded, and
    // `chunked, chunked` is how a response splitting attempt looks (HAProxy refuses both with 502).
    const te = headers['transfer-encoding'];
    if (te !== undefined && !isChunkedOnly(te)) {
      controller.abort(new BadResponseError(`transfer-encoding ${String(te)}`));
      return;
    }
    // undici applies maxResponseHeaderSize to HTTP/1.1 only; over HTTP/2 the head is measured here.
    const pool = this.exchange.route.pool;
    if (pool.config.http2 && headSize(headers) > pool.config.maxResponseHeaderSize) {
      controller.abort(new BadResponseError('response head over maxResponseHeaderSize'));
      return;
    }
    this.status = statusCode;
    const exchange = this.exchange;
    const ctx = exchange.ctx;
    ctx.upstreamHeadersMs = performance.now() - this.started;
    const res = ctx.res;
    const route = exchange.route;
    this.lease.observe(statusCode >= 500);
    if (res.destroyed) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    if (statusCode >= 500 && exchange.maybeRetry(this, 'status', statusCode)) {
      this.failure = 'status';
      this.abandoned = true;
      controller.abort(new Error('retrying'));
      this.end();
      return;
    }
    const head: ResponseHead = {
      status: statusCode,
      headers: clientResponseHeaders(headers, route.pool.hidden),
      // Only a hook (a response plugin, an upstream override) can add stages or taps: none, no object to make.
      body: route.chain.hasResponseHooks || ctx.upstreamOverrides !== null ? new ResponseBody() : null,
    };
    if (ctx.upstreamOverrides !== null) {
      const reply = ctx.overrideUpstream(statusCode, head);
      if (reply !== undefined) {
        // The client gets the reply; this response is ignored (a 304 has no body; an error's is cut short).
        this.abandoned = true;
        exchange.finish(statusCode >= 500);
        if (statusCode !== 304) controller.abort(new Error('replaced by a stored response'));
        sendReply(ctx, route.chain, reply);
        return;
      }
    }
    const sticky = route.pool.sticky;
    if (sticky !== null && !ctx.stickyPinned)
      appendSetCookie(head.headers, sticky.serialize(this.lease.target.stickyToken));
    try {
      finishHead(route.chain, ctx, head);
    } catch (err) {
      this.abandoned = true;
      exchange.finish(false);
      controller.abort(new Error('a response hook failed'));
      return failInternally(ctx, route.chain.echoRequestId, err);
    }
    if (ctx.grpc && head.headers['grpc-status'] !== undefined) this.grpcStatus = takeGrpcStatus(head.headers);
    if (head.body !== null && head.body.whole !== null && ctx.req.method !== 'HEAD') {
      this.held = new HeldResponse(head, statusMessage, route.maxBodySize);
      return;
    }
    this.writeHead(head, statusCode, statusMessage);
  }

  private writeHead(head: ResponseHead, statusCode: number, statusMessage: string | undefined): void {
    const res = this.exchange.ctx.res;
    // HTTP/2 has no reason phrase (Node warns once per process when given one).
    if (head.status === statusCode && statusMessage && this.exchange.ctx.req.httpVersionMajor === 1)
      res.writeHead(head.status, statusMessage, head.headers);
    else res.writeHead(head.status, head.headers);
    const body = head.body;
    this.taps = body === null ? null : body.taps;
    this.trailerSink = body === null ? null : body.trailerSink;
    this.sink = body === null || body.stages === null ? res : this.pipeStages(body.stages);
  }

  /** Body stages run in the order plugins added them; the last one writes to the client, with backpressure. */
  private pipeStages(stages: Transform[]): Writable {
    const res = this.exchange.ctx.res;
    this.stages = stages;
    for (let i = 0; i < stages.length - 1; i++) stages[i]!.pipe(stages[i + 1]!);
    const last = stages[stages.length - 1]!;
    const taps = this.taps;
    last.on('data', (c: Buffer) => {
      if (taps !== null) for (let i = 0; i < taps.length; i++) taps[i]!.write(c);
      if (!res.write(c)) {
        last.pause();
        this.block();
        res.once('drain', () => {
          this.blocked = false;
          last.resume();
        });
      }
    });
    last.once('end', () => this.finishResponse());
    const fail = () => cut(res);
    for (const stage of stages) stage.once('error', fail);
    res.once('close', () => {
      for (const stage of stages) stage.destroy();
    });
    return stages[0]!;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.abandoned) return;
    this.exchange.ctx.bytesOut += chunk.length;
    if (this.held !== null) {
      if (!this.held.add(chunk)) {
        this.abandoned = true;
        controller.abort(new Error('response body over maxBodySize'));
        this.end();
        this.exchange.finish(false);
        const { code, detail } = this.held.tooLarge;
        sendProblem(this.exchange.ctx, this.exchange.route.chain, code, detail);
      }
      return;
    }
    const taps = this.taps;
    if (taps !== null && this.stages === null) for (let i = 0; i < taps.length; i++) taps[i]!.write(chunk);
    const sink = this.sink!;
    if (!sink.write(chunk)) {
      controller.pause();
      this.block();
      if (this.drainListener === null)
        this.drainListener = () => {
          this.blocked = false;
          controller.resume();
        };
      sink.once('drain', this.drainListener);
    }
  }

  private pendingTrailers: Record<string, string> | null = null;

  /** Ends the client response (after the body stages flushed, when there are any), with any trailers. */
  private finishResponse(): void {
    const res = this.exchange.ctx.res;
    if (this.pendingTrailers !== null) res.addTrailers(this.pendingTrailers);
    const taps = this.taps;
    if (taps !== null && !res.destroyed) for (let i = 0; i < taps.length; i++) taps[i]!.end();
    res.end();
  }

  onResponseEnd(
    _controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    this.end();
    if (this.abandoned) return;
    const exchange = this.exchange;
    exchange.finish(exchange.ctx.status >= 500);
    // Trailers (gRPC's grpc-status and grpc-message) go on to the client as trailers.
    if (this.grpcStatus !== null) trailers = { ...this.grpcStatus, ...trailers };
    if (this.held !== null) return this.releaseHeld();
    if (this.trailerSink !== null) this.trailerSink({ ...(trailers as Record<string, string>) });
    else if (trailers !== undefined && trailers !== null) {
      let any = false;
      for (const _ in trailers) {
        any = true;
        break;
      }
      if (any) this.pendingTrailers = trailers as Record<string, string>;
    }
    if (this.stages !== null)
      this.stages[0]!.end(); // the response ends when the last stage has flushed
    else this.finishResponse();
  }

  /** The held body is whole: rewrite it, then write the head and the result (or a 502 when it does not parse, or a stage's Reply). */
  private releaseHeld(): void {
    const held = this.held!;
    this.held = null;
    const ctx = this.exchange.ctx;
    const body = held.finish(held.head.body!.whole!);
    if (!Buffer.isBuffer(body)) {
      const chain = this.exchange.route.chain;
      return 'status' in body ? sendReply(ctx, chain, body) : sendProblem(ctx, chain, body.code, body.detail);
    }
    this.writeHead(held.head, this.status, held.statusMessage);
    if (this.stages !== null) {
      this.stages[0]!.end(body); // the response ends when the last stage has flushed
      return;
    }
    const taps = this.taps;
    if (taps !== null) for (let i = 0; i < taps.length; i++) taps[i]!.write(body);
    ctx.res.write(body);
    this.finishResponse();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.failure ??= failureKindOf(errorCodeOf(err), (err as NodeJS.ErrnoException).code ?? '');
    this.end();
    if (this.abandoned) return;
    const exchange = this.exchange;
    if (exchange.done) return; // the client left first; nothing to tell it
    const ctx = exchange.ctx;
    const undiciCode = (err as NodeJS.ErrnoException).code ?? '';
    const code = errorCodeOf(err);
    if (ctx.res.headersSent) {
      // Mid-body failure: the only honest signal left is to cut the connection.
      this.lease.observe(true);
      exchange.finish(true);
      ctx.errorCode = 'TP_UPSTREAM_TRUNCATED';
      cut(ctx.res);
      return;
    }
    // The client's body was refused (too large, or a body stage could not decode it): not the upstream's fault.
    if (code === 'TP_BODY_TOO_LARGE' || code === 'TP_BAD_REQUEST') return exchange.fail(code);
    this.lease.observe(true);
    if (exchange.maybeRetry(this, failureKindOf(code, undiciCode), 0)) return;
    exchange.fail(code);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    // Still blocked: the end of the upstream body waits in our buffer for the client, the timer stays on it.
    if (this.sendTimer !== null && !this.blocked) clearTimeout(this.sendTimer);
    this.lease.end();
    const ctx = this.exchange.ctx;
    if (CHANNELS.attemptEnd.hasSubscribers)
      publishAttemptEnd(
        ctx,
        ctx.upstreamName,
        this.lease.target.url,
        this.number,
        this.status,
        performance.now() - this.started,
        this.failure,
      );
  }
}

/**
 * A gRPC error without messages comes "trailers-only": grpc-status in the one HEADERS frame, ending the stream.
 * undici cannot tell us the stream ended there and the client's HEADERS frame does not end it, so a gRPC client
 * would find no status; the status moves to the trailers instead (a valid gRPC response too).
 */
function takeGrpcStatus(headers: ResponseHead['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['grpc-status', 'grpc-message', 'grpc-status-details-bin']) {
    const v = headers[name];
    if (v === undefined) continue;
    out[name] = String(Array.isArray(v) ? v[0] : v);
    delete headers[name];
  }
  return out;
}

const TLS_FAILURE = /^(ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_(GET|VERIFY)|SELF_SIGNED/;

/** Maps an undici or socket error to the catalogue: reach failures 502, timeouts 504. */
export function errorCodeOf(err: Error): ErrorCode {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // llhttp's refusals (both Transfer-Encoding and Content-Length, bad chunking) come without a code.
  if (err.name === 'HTTPParserError') return 'TP_UPSTREAM_BAD_RESPONSE';
  switch (code) {
    case 'TP_BODY_TOO_LARGE':
    case 'TP_BAD_REQUEST':
    case 'TP_UPSTREAM_BAD_RESPONSE':
      return code;
    case 'UND_ERR_HEADERS_OVERFLOW': // over maxResponseHeaderSize
      return 'TP_UPSTREAM_BAD_RESPONSE';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'TP_UPSTREAM_TIMEOUT';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return 'TP_UPSTREAM_UNAVAILABLE';
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
      return 'TP_UPSTREAM_BAD_RESPONSE';
    case 'UND_ERR_SOCKET':
      // A 101 to a request that asked for no upgrade: nothing to tunnel, and not HTTP either.
      return err.message === 'bad upgrade' ? 'TP_UPSTREAM_BAD_RESPONSE' : 'TP_UPSTREAM_RESET';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'TP_UPSTREAM_RESET';
    default:
      if (code.startsWith('HPE_')) return 'TP_UPSTREAM_BAD_RESPONSE';
      // Certificate verification (OpenSSL's X509 codes, Node's ERR_TLS_*) or a failed handshake (ERR_SSL_*).
      if (TLS_FAILURE.test(code)) return 'TP_UPSTREAM_TLS';
      return 'TP_UPSTREAM_RESET';
  }
}
