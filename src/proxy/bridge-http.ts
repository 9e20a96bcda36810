// bridge to: http — the gateway accepts a client's WebSocket itself; each message becomes a POST to the upstream
// path (through the pool: balancer, health, breaker; no retries, a POST is not idempotent) and each answer's body a
// message back, in the order the messages came. One POST at a time per connection: the next waits until the
// answer to the last was written, and past MAX_QUEUED waiting messages the client's socket is no longer read, so a
// fast client cannot make the gateway buffer without bound.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { ErrorCode } from '../errors.ts';
import { finishHead, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { problemBody } from '../pipeline/problem.ts';
import { sendProblem } from '../pipeline/reply.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { TunnelOpened } from '../terminals/terminal.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { upstreamRequestHeaders, type UpstreamHeaderPolicy } from './headers.ts';
import { errorCodeOf } from './http-forwarder.ts';

export interface HttpBridgeRoute extends UpstreamHeaderPolicy {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  /** The upstream path each message is POSTed to (the client's query is appended). */
  readonly path: string;
  /** The Content-Type of every POST, or null to choose per message. */
  readonly contentType: string | null;
  /** The largest message taken from the client and the largest answer body (the route's maxBodySize). */
  readonly maxBodySize: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /** A connection with no traffic and no POST in flight for this long is closed. */
  readonly idleTimeout: number;
}

const MAX_QUEUED = 16;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** Client headers that describe the upgrade, not the POSTs (accept-encoding: the answer must come as it is). */
const NOT_FOR_POST = /^(?:sec-websocket-|accept-encoding$|content-length$|content-type$)/;
const TEXTUAL =
  /^(?:text\/|application\/(?:[\w.+-]*\+)?(?:json|xml)\b|application\/(?:javascript|x-www-form-urlencoded)\b)/i;

/** The Content-Type of a message: JSON text as JSON, other text as text, binary as bytes. */
export function messageType(data: Buffer, isBinary: boolean): string {
  if (isBinary) return 'application/octet-stream';
  const first = data.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first === 0x7b || first === 0x5b) {
    try {
      JSON.parse(data.toString('utf8'));
      return 'application/json';
    } catch {
      // not JSON after all: plain text
    }
  }
  return 'text/plain; charset=utf-8';
}

interface Answer {
  readonly body: Buffer | string;
  readonly binary: boolean;
}

function problemAnswer(ctx: RequestContext, code: ErrorCode, detail?: string): Answer {
  return { body: problemBody(code, detail, ctx.requestId), binary: false };
}

export class HttpBridge {
  private readonly route: HttpBridgeRoute;
  private readonly wss: WebSocketServer;
  /** Headers the response hooks gave each pending handshake, written into its 101. */
  private readonly pending = new WeakMap<IncomingMessage, { ctx: RequestContext; lines: string[] }>();

  constructor(route: HttpBridgeRoute) {
    this.route = route;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: route.maxBodySize,
    });
    this.wss.on('headers', (lines: string[], req: IncomingMessage) => {
      const p = this.pending.get(req);
      if (p !== undefined) lines.push(...p.lines);
    });
    // What ws refuses after our own checks (a malformed Sec-WebSocket-Protocol): problem+json as anywhere else.
    this.wss.on('wsClientError', (err: Error, _socket: Socket, req: IncomingMessage) => {
      const p = this.pending.get(req);
      if (p !== undefined) sendProblem(p.ctx, route.chain, 'TP_BAD_REQUEST', err.message);
    });
  }

  /** A plain request on a WebSocket route. */
  refuse(ctx: RequestContext): void {
    sendProblem(ctx, this.route.chain, 'TP_UPGRADE_REQUIRED', 'open a WebSocket on this route', {
      upgrade: 'websocket',
    });
  }

  upgrade(ctx: RequestContext, socket: Socket, head: Buffer, opened: TunnelOpened): void {
    const req = ctx.req;
    const route = this.route;
    if (req.method !== 'GET' || req.headers['sec-websocket-version'] !== '13') {
      ctx.res.setHeader('sec-websocket-version', '13');
      return sendProblem(ctx, route.chain, 'TP_BAD_REQUEST', 'expected a WebSocket GET with Sec-WebSocket-Version 13');
    }
    if (!WS_KEY.test(req.headers['sec-websocket-key'] ?? ''))
      return sendProblem(ctx, route.chain, 'TP_BAD_REQUEST', 'missing or invalid Sec-WebSocket-Key');
    const responseHead: ResponseHead = { status: 101, headers: {}, body: null };
    try {
      finishHead(route.chain, ctx, responseHead);
    } catch (err) {
      return failInternally(ctx, route.chain.echoRequestId, err);
    }
    const lines: string[] = [];
    for (const name in responseHead.headers) {
      const value = responseHead.headers[name];
      if (value === undefined || name === 'connection' || name === 'upgrade') continue;
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
    }
    this.pending.set(req, { ctx, lines });
    ctx.status = 101;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.pending.delete(req);
      new Session(ctx, route, ws, socket, opened);
    });
  }
}

/** One client's WebSocket: its messages in order, one POST at a time. */
class Session {
  private readonly ctx: RequestContext;
  private readonly route: HttpBridgeRoute;
  private readonly ws: WebSocket;
  private readonly queue: { data: Buffer; isBinary: boolean }[] = [];
  private busy = false;
  private closed = false;
  private paused = false;
  /** Aborts the POST in flight, when there is one. */
  private abortPost: (() => void) | null = null;

  constructor(ctx: RequestContext, route: HttpBridgeRoute, ws: WebSocket, socket: Socket, opened: TunnelOpened) {
    this.ctx = ctx;
    this.route = route;
    this.ws = ws;
    const release = opened(() => ws.close(1001, 'gateway shutting down'));
    socket.setTimeout(route.idleTimeout, () => {
      if (!this.busy) ws.terminate();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const message = data as Buffer;
      ctx.bytesIn += message.length;
      this.queue.push({ data: message, isBinary });
      if (this.queue.length >= MAX_QUEUED && !this.paused) {
        this.paused = true;
        ws.pause();
      }
      this.next();
    });
    ws.on('error', () => undefined); // a protocol error or a message over maxBodySize: ws closes (1002, 1009)
    ws.once('close', () => {
      this.closed = true;
      this.queue.length = 0;
      this.abortPost?.();
      release();
    });
  }

  private next(): void {
    if (this.busy || this.closed) return;
    const message = this.queue.shift();
    if (message === undefined) return;
    if (this.paused && this.queue.length < MAX_QUEUED / 2) {
      this.paused = false;
      this.ws.resume();
    }
    this.busy = true;
    this.post(message.data, message.isBinary, (answer) => {
      this.abortPost = null;
      if (this.closed) return;
      this.ctx.bytesOut += answer.body.length;
      // The next POST waits until this answer is written: the gateway holds one answer per connection at most.
      this.ws.send(answer.body, { binary: answer.binary }, () => {
        this.busy = false;
        this.next();
      });
    });
  }

  private post(data: Buffer, isBinary: boolean, done: (answer: Answer) => void): void {
    const { ctx, route } = this;
    const lease = route.pool.beginRequest(ctx);
    if (typeof lease === 'string') return done(problemAnswer(ctx, lease));
    const target = lease.target;
    ctx.target = target.url;
    ctx.attempts++;
    const headers: string[] = [];
    const base = upstreamRequestHeaders(ctx, route, target.origin.host, false);
    for (let i = 0; i < base.length; i += 2) if (!NOT_FOR_POST.test(base[i]!)) headers.push(base[i]!, base[i + 1]!);
    headers.push('content-type', route.contentType ?? messageType(data, isBinary));
    headers.push('content-length', String(data.length));

    let status = 0;
    let binary = false;
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (answer: Answer, failed: boolean) => {
      if (settled) return;
      settled = true;
      lease.observe(failed);
      lease.end();
      done(answer);
    };
    let controller: Dispatcher.DispatchController | null = null;
    let clientGone = false;
    this.abortPost = () => {
      clientGone = true; // not the upstream's failure
      controller?.abort(new Error('client closed the connection'));
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode, h) {
        status = statusCode;
        const type = h['content-type'];
        // Text answers go back as text frames; a type that is not text (images, protobuf) as binary frames.
        binary = typeof type === 'string' && !TEXTUAL.test(type);
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > route.maxBodySize) {
          chunks = [];
          // Answered first: the abort calls onResponseError at once, and only the first answer counts.
          finish(
            problemAnswer(ctx, 'TP_UPSTREAM_BODY_TOO_LARGE', `the answer may be at most ${route.maxBodySize} bytes`),
            false,
          );
          c.abort(new Error('answer over maxBodySize'));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        const body = Buffer.concat(chunks, size);
        finish({ body: binary ? body : body.toString('utf8'), binary }, status >= 500);
      },
      onResponseError(_c, err) {
        finish(problemAnswer(ctx, errorCodeOf(err)), !clientGone);
      },
    };
    target.dispatcher.dispatch(
      {
        path: route.path + ctx.query,
        method: 'POST',
        headers,
        body: data,
        headersTimeout: route.headersTimeout,
        bodyTimeout: route.bodyTimeout,
      },
      handler,
    );
  }
}
