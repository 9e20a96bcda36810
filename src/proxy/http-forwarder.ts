// The forwarder's hot path: one undici dispatch per request, streaming both ways with backpressure.
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.ts';
import type { Chain } from '../plugins/pipeline.ts';
import { runResponseHooks } from '../plugins/pipeline.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { Target } from '../upstream/target.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { clientResponseHeaders, upstreamRequestHeaders, type UpstreamHeaderPolicy } from './headers.ts';
import { sendProblem } from './reply.ts';

/** What the forwarder needs from a compiled route. */
export interface ForwardRoute extends UpstreamHeaderPolicy {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  readonly maxBodySize: number;
  /** Time allowed until the upstream's response head (bounded by the route's requestTimeout). */
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly echoRequestId: string | null;
}

class BodyTooLargeError extends Error {
  readonly code = 'TP_BODY_TOO_LARGE';
}

export function forward(ctx: RequestContext, route: ForwardRoute): void {
  const target = route.pool.pick(ctx);
  if (target === undefined) {
    sendProblem(ctx, route.chain, 'TP_NO_HEALTHY_TARGET', undefined, route.echoRequestId);
    return;
  }
  const req = ctx.req;
  const headers = req.headers;
  const hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  ctx.target = target.url;
  target.active++;
  const handler = new ForwardHandler(ctx, route, target);
  ctx.res.once('close', handler.onClientClose);
  target.dispatcher.dispatch(
    {
      path: ctx.path + ctx.query,
      method: req.method!,
      headers: upstreamRequestHeaders(ctx, route, target.origin.host, false),
      body: hasBody ? req : null,
      headersTimeout: route.headersTimeout,
      bodyTimeout: route.bodyTimeout,
    },
    handler,
  );
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  private readonly ctx: RequestContext;
  private readonly route: ForwardRoute;
  private readonly target: Target;
  private controller: Dispatcher.DispatchController | null = null;
  private done = false;
  private drainListener: (() => void) | null = null;

  constructor(ctx: RequestContext, route: ForwardRoute, target: Target) {
    this.ctx = ctx;
    this.route = route;
    this.target = target;
  }

  /** The client went away (or the response finished): stop the upstream side if it is still running. */
  readonly onClientClose = (): void => {
    if (this.done) return;
    this.finish();
    this.controller?.abort(new Error('client closed the connection'));
    if (this.ctx.status === 0) this.ctx.status = 499; // NGINX's "client closed request", for the log only
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('client closed the connection'));
  }

  onBodySent(chunk: Buffer): void {
    this.ctx.bytesIn += chunk.length;
    if (this.ctx.bytesIn > this.route.maxBodySize) throw new BodyTooLargeError('request body exceeds maxBodySize');
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return; // 1xx interim responses are not relayed (101 goes through the upgrade tunnel)
    const ctx = this.ctx;
    const res = ctx.res;
    if (res.destroyed) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    const head: ResponseHead = { status: statusCode, headers: clientResponseHeaders(headers, this.route.pool.hidden) };
    const chain = this.route.chain;
    if (chain.response.length > 0) runResponseHooks(chain, ctx, head);
    if (this.route.echoRequestId !== null) head.headers[this.route.echoRequestId] = ctx.requestId;
    ctx.status = head.status;
    if (head.status === statusCode && statusMessage) res.writeHead(head.status, statusMessage, head.headers);
    else res.writeHead(head.status, head.headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.ctx.bytesOut += chunk.length;
    if (!this.ctx.res.write(chunk)) {
      controller.pause();
      if (this.drainListener === null) this.drainListener = () => controller.resume();
      this.ctx.res.once('drain', this.drainListener);
    }
  }

  onResponseEnd(): void {
    this.finish();
    this.ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const wasDone = this.done;
    this.finish();
    const ctx = this.ctx;
    if (wasDone || ctx.res.destroyed) return; // the client left first; nothing to tell it
    if (ctx.res.headersSent) {
      // Mid-body failure: the only honest signal left is to cut the connection.
      ctx.errorCode = 'TP_UPSTREAM_RESET';
      ctx.res.destroy();
      return;
    }
    const code = errorCodeOf(err);
    if (code === 'TP_BODY_TOO_LARGE') ctx.res.shouldKeepAlive = false;
    sendProblem(ctx, this.route.chain, code, undefined, this.route.echoRequestId);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.target.active--;
  }
}

/** Maps an undici or socket error to the catalogue: reach failures 502, timeouts 504. */
export function errorCodeOf(err: Error): ErrorCode {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  switch (code) {
    case 'TP_BODY_TOO_LARGE':
      return 'TP_BODY_TOO_LARGE';
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
    case 'ECONNRESET':
    case 'EPIPE':
      return 'TP_UPSTREAM_RESET';
    default:
      if (code.startsWith('HPE_')) return 'TP_UPSTREAM_BAD_RESPONSE';
      return 'TP_UPSTREAM_RESET';
  }
}
