// One call of an aggregate, sent through its upstream's pool as the forwarder sends a client request: admission
// (maxRequests, queue), the circuit breaker, the balancer, passive health, retries with the upstream's policy and
// budget. Unlike the forwarder it carries no body and buffers the answer (up to the route's maxBodySize), since
// the answer is merged, not relayed.
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.ts';
import { publishAttemptEnd, publishAttemptStart } from '../observability/events.ts';
import { clientResponseHeaders } from '../proxy/headers.ts';
import { errorCodeOf } from '../proxy/http-forwarder.ts';
import { backoffDelay, covers, failureKindOf, type FailureKind, type RetryPolicy } from '../proxy/retry-policy.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { Waiter } from '../upstream/admission.ts';
import type { Lease, UpstreamPool } from '../upstream/pool.ts';
import type { Target } from '../upstream/target.ts';

/** How a call is sent: fixed when the config loads. */
export interface CallRoute {
  readonly pool: UpstreamPool;
  readonly method: string;
  /** The call's whole time, retries included (ms; 0: none). */
  readonly timeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly retry: RetryPolicy;
  readonly maxBody: number;
  readonly preserveHost: boolean;
}

export interface CallAnswer {
  readonly status: number;
  readonly headers: ResponseHead['headers'];
  /** Parsed JSON when the answer says JSON, else the text; null for an empty body. */
  readonly body: unknown;
}

export interface CallFailure {
  /** The underlying code (TP_UPSTREAM_TIMEOUT, TP_CIRCUIT_OPEN ...). */
  readonly cause: ErrorCode;
  /** Why, in words that name no address. */
  readonly detail: string;
}

export type CallResult =
  { readonly ok: true; readonly answer: CallAnswer } | { readonly ok: false; readonly failure: CallFailure };

const JSON_TYPE = /[/+]json\s*(;|$)/i;

/** Sends one call; `done` is called once (not after `abort`). */
export class PooledCall {
  private readonly ctx: RequestContext;
  private readonly route: CallRoute;
  private readonly path: string;
  private readonly headers: readonly string[];
  private readonly done: (result: CallResult) => void;
  private finished = false;
  private admitted = false;
  private waiter: Waiter | null = null;
  private timer: NodeJS.Timeout | null = null;
  private tries = 0;
  private retrying = false;
  /** The current try: its lease and controller; a retry replaces both. */
  private lease: Lease | null = null;
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private responseHeaders: ResponseHead['headers'] = {};
  private chunks: Buffer[] = [];
  private size = 0;
  /** The open try's number within the request (the calls of one aggregate share the numbering); 0: none open. */
  private attempt = 0;
  private attemptStarted = 0;
  private attemptTarget = '';

  constructor(
    ctx: RequestContext,
    route: CallRoute,
    path: string,
    headers: readonly string[],
    done: (result: CallResult) => void,
  ) {
    this.ctx = ctx;
    this.route = route;
    this.path = path;
    this.headers = headers;
    this.done = done;
  }

  start(): void {
    if (this.route.timeout > 0) this.timer = setTimeout(this.onTimeout, this.route.timeout);
    const admission = this.route.pool.admission;
    if (admission.tryEnter()) return this.admit();
    this.waiter = admission.enqueue(
      () => {
        this.waiter = null;
        this.admit();
      },
      () => this.fail('TP_UPSTREAM_OVERLOADED', 'the upstream has too many requests in progress and waiting'),
    );
    if (this.waiter === null)
      this.fail('TP_UPSTREAM_OVERLOADED', 'the upstream has too many requests in progress and waiting');
  }

  /** Stops the call (the client left, the aggregate failed or ran out of time); `done` is not called. */
  abort(): void {
    if (this.finished) return;
    this.end(false);
  }

  private admit(): void {
    const pool = this.route.pool;
    if (this.finished) return void pool.admission.leave();
    this.admitted = true;
    if (!pool.admit()) {
      pool.admission.leave();
      this.admitted = false;
      return this.fail('TP_CIRCUIT_OPEN', "the upstream's circuit breaker is open");
    }
    pool.retryBudget.requestStarted();
    this.try();
  }

  private try(avoid?: Target): void {
    if (this.finished) return;
    const lease = this.route.pool.begin(this.ctx, avoid);
    if (lease === undefined) return this.fail('TP_NO_HEALTHY_TARGET', 'no target of the upstream is usable');
    this.tries++;
    this.ctx.attempts++;
    this.lease = lease;
    this.status = 0;
    this.chunks = [];
    this.size = 0;
    const target = lease.target;
    const host = this.route.preserveHost && this.ctx.host !== '' ? this.ctx.host : target.origin.host;
    this.attempt = this.ctx.attempts;
    this.attemptStarted = performance.now();
    this.attemptTarget = target.url;
    // Subscribers' headers for this try (a trace's traceparent naming the call's client span).
    const path = this.path.split('?', 1)[0];
    const extra = publishAttemptStart(this.ctx, target.url, this.attempt, path, this.tries - 1, this.route.method);
    target.dispatcher.dispatch(
      {
        path: this.path,
        method: this.route.method,
        headers: extra === null ? [...this.headers, 'host', host] : [...this.headers, ...extra, 'host', host],
        body: null,
        headersTimeout: this.route.headersTimeout,
        bodyTimeout: this.route.bodyTimeout,
      },
      new Try(this, this.tries),
    );
  }

  /** Whether a failed try is tried again (the upstream's retry policy and budget; calls are idempotent). */
  private retry(kind: FailureKind, status: number): boolean {
    const policy = this.route.retry;
    if (this.finished || this.tries > policy.attempts || !covers(policy, kind, status)) return false;
    if (kind !== 'connect-failure') {
      const budget = this.route.pool.retryBudget;
      if (!budget.tryStartRetry()) return false;
      if (this.retrying) budget.retryEnded();
      this.retrying = true;
    }
    const failed = this.lease!.target;
    this.endAttempt(status, kind === 'status' ? null : kind);
    this.lease!.end();
    this.lease = null;
    this.controller = null;
    const delay = backoffDelay(policy, this.tries);
    if (delay === 0) this.try(failed);
    else setTimeout(() => this.try(failed), delay).unref();
    return true;
  }

  /** Whether try `n` still speaks for the call (a retry or the end of the call silences it). */
  current(n: number): boolean {
    return !this.finished && n === this.tries && this.lease !== null;
  }

  requestStarted(n: number, controller: Dispatcher.DispatchController): void {
    if (!this.current(n)) return void controller.abort(new Error('call over'));
    this.controller = controller;
  }

  responseStarted(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    this.lease?.observe(statusCode >= 500);
    if (statusCode >= 500 && this.retry('status', statusCode)) {
      controller.abort(new Error('retrying'));
      return;
    }
    this.status = statusCode;
    this.responseHeaders = clientResponseHeaders(headers, this.route.pool.hidden);
  }

  responseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.status === 0) return;
    this.size += chunk.length;
    if (this.size > this.route.maxBody) {
      controller.abort(new Error('over maxBodySize'));
      this.controller = null;
      this.fail('TP_UPSTREAM_BAD_RESPONSE', "the answer's body is over the route's maxBodySize");
      return;
    }
    this.chunks.push(chunk);
  }

  responseEnded(): void {
    if (this.status === 0) return;
    this.controller = null; // nothing left to abort
    const status = this.status;
    this.endAttempt(status, null);
    if (status < 200 || status > 299)
      return this.fail('TP_UPSTREAM_BAD_RESPONSE', `the upstream answered ${status}`, status >= 500);
    const coding = this.responseHeaders['content-encoding'];
    if (coding !== undefined && String(coding) !== 'identity')
      return this.fail(
        'TP_UPSTREAM_BAD_RESPONSE',
        `the answer is encoded (${String(coding)}), which an aggregate cannot read`,
      );
    const text = Buffer.concat(this.chunks, this.size).toString('utf8');
    let body: unknown = text === '' ? null : text;
    if (text !== '' && JSON_TYPE.test(String(this.responseHeaders['content-type'] ?? ''))) {
      try {
        body = JSON.parse(text);
      } catch (err) {
        return this.fail('TP_UPSTREAM_BAD_RESPONSE', `the answer is not valid JSON: ${(err as Error).message}`);
      }
    }
    this.end(false);
    this.done({ ok: true, answer: { status, headers: this.responseHeaders, body } });
  }

  responseFailed(err: Error): void {
    const code = errorCodeOf(err);
    this.lease?.observe(true);
    const kind = failureKindOf(code, (err as NodeJS.ErrnoException).code ?? '');
    this.endAttempt(0, kind);
    if (this.retry(kind, 0)) return;
    this.fail(code, DETAILS[code] ?? 'the call failed');
  }

  private readonly onTimeout = (): void => {
    this.timer = null;
    this.endAttempt(this.status, 'timeout');
    this.fail('TP_UPSTREAM_TIMEOUT', 'the call ran past its timeout');
  };

  private fail(cause: ErrorCode, detail: string, failed = true): void {
    if (this.finished) return;
    this.end(failed);
    this.done({ ok: false, failure: { cause, detail } });
  }

  /** turnpike:attempt:end for the open try, once. */
  private endAttempt(status: number, failure: string | null): void {
    if (this.attempt === 0) return;
    const attempt = this.attempt;
    this.attempt = 0;
    const ms = performance.now() - this.attemptStarted;
    publishAttemptEnd(this.ctx, this.route.pool.name, this.attemptTarget, attempt, status, ms, failure);
  }

  private end(failed: boolean): void {
    // A try still open here was cut short by the call's end (over maxBodySize, the aggregate gave up).
    this.endAttempt(this.status, 'abandoned');
    this.finished = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const pool = this.route.pool;
    if (this.waiter !== null) pool.admission.cancel(this.waiter);
    this.controller?.abort(new Error('call over'));
    this.lease?.end();
    if (!this.admitted) return;
    pool.admission.leave();
    pool.settle(failed);
    pool.retryBudget.requestEnded();
    if (this.retrying) pool.retryBudget.retryEnded();
  }
}

/** What each failure says in a problem's detail: never an address. */
const DETAILS: Partial<Record<ErrorCode, string>> = {
  TP_UPSTREAM_UNAVAILABLE: 'the upstream could not be reached',
  TP_UPSTREAM_RESET: 'the upstream closed the connection',
  TP_UPSTREAM_TLS: 'the TLS handshake with the upstream failed',
  TP_UPSTREAM_BAD_RESPONSE: 'the upstream sent an invalid response',
  TP_UPSTREAM_TIMEOUT: 'the upstream did not answer in time',
};

/** The undici handler of one try: passes on only while its try is the call's current one. */
class Try implements Dispatcher.DispatchHandler {
  private readonly call: PooledCall;
  private readonly n: number;

  constructor(call: PooledCall, n: number) {
    this.call = call;
    this.n = n;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.call.requestStarted(this.n, controller);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.call.current(this.n)) this.call.responseStarted(controller, status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.call.current(this.n)) this.call.responseData(controller, chunk);
  }

  onResponseEnd(): void {
    if (this.call.current(this.n)) this.call.responseEnded();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.call.current(this.n)) this.call.responseFailed(err);
  }
}
