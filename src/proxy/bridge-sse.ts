// bridge to: sse — one upstream WebSocket per client GET, each of its messages a Server-Sent Event. The client
// leaving closes the WebSocket; the WebSocket closing ends the stream. A client that reads slowly pauses reading
// from the upstream socket (TCP then pushes back on the upstream), so the gateway holds at most Node's write buffer
// and one message per stream; a client that reads nothing for the route's sendTimeout is dropped.
import { isIP } from 'node:net';
import WebSocket, { type RawData } from 'ws';
import { finishHead, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { sendProblem } from '../pipeline/reply.ts';
import type { ErrorCode } from '../errors.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { upstreamRequestHeaders, type UpstreamHeaderPolicy } from './headers.ts';
import { errorCodeOf } from './http-forwarder.ts';

export interface SseBridgeRoute extends UpstreamHeaderPolicy {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  /** The upstream WebSocket's path (the client's query is appended). */
  readonly path: string;
  readonly connectTimeout: number;
  /** The largest upstream message taken (the route's maxBodySize): one message is held whole at most. */
  readonly maxPayload: number;
  /** Time the client may leave a write refused before it is dropped (0: off). */
  readonly sendTimeout: number;
}

/** Headers the upgrade request gets from ws itself, or that say nothing to a WebSocket server. */
const NOT_FOR_HANDSHAKE =
  /^(?:sec-websocket-|accept$|accept-encoding$|content-length$|content-type$|cache-control$|last-event-id$)/;

/** The client's request headers as the WebSocket handshake sends them (X-Forwarded-*, request id, consumer). */
export function handshakeHeaders(
  ctx: RequestContext,
  policy: UpstreamHeaderPolicy,
  host: string,
): Record<string, string> {
  const list = upstreamRequestHeaders(ctx, policy, host, false);
  const out: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (NOT_FOR_HANDSHAKE.test(name)) continue;
    out[name] = out[name] === undefined ? list[i + 1]! : `${out[name]}, ${list[i + 1]!}`;
  }
  return out;
}

/** Whether the client accepts an event stream (no Accept header accepts anything). */
function acceptsEventStream(accept: string | undefined): boolean {
  if (accept === undefined) return true;
  return /(?:^|,)\s*(?:text\/event-stream|text\/\*|\*\/\*)\s*(?:;|,|$)/i.test(accept);
}

/** One SSE event: every line of a text message its own `data:` field; a binary message as base64 (`event: binary`). */
export function sseEvent(data: Buffer, isBinary: boolean): string {
  if (isBinary) return `event: binary\ndata: ${data.toString('base64')}\n\n`;
  return `data: ${data
    .toString('utf8')
    .split(/\r\n|\r|\n/)
    .join('\ndata: ')}\n\n`;
}

/** What a failed handshake is: a socket error by its code, anything else (a non-101, a wrong accept key) a bad answer. */
function handshakeFailure(err: Error): ErrorCode {
  return (err as NodeJS.ErrnoException).code === undefined ? 'TP_UPSTREAM_BAD_RESPONSE' : errorCodeOf(err);
}

export function bridgeToSse(ctx: RequestContext, route: SseBridgeRoute): void {
  const req = ctx.req;
  if (req.method !== 'GET') {
    ctx.res.setHeader('allow', 'GET');
    return sendProblem(ctx, route.chain, 'TP_METHOD_NOT_ALLOWED', 'this route streams events to a GET');
  }
  if (!acceptsEventStream(req.headers.accept))
    return sendProblem(ctx, route.chain, 'TP_NOT_ACCEPTABLE', 'this route answers text/event-stream');
  const lease = route.pool.beginRequest(ctx);
  if (typeof lease === 'string') return sendProblem(ctx, route.chain, lease);
  const target = lease.target;
  ctx.target = target.url;
  ctx.attempts = 1;
  const origin = target.origin;
  const tls = origin.protocol === 'https:';
  const hostname = origin.hostname.replace(/^\[|\]$/g, '');
  const res = ctx.res;
  let ws: WebSocket;
  try {
    ws = new WebSocket(`${tls ? 'wss' : 'ws'}://${origin.host}${route.path}${ctx.query}`, {
      headers: handshakeHeaders(ctx, route, origin.host),
      perMessageDeflate: false,
      maxPayload: route.maxPayload,
      followRedirects: false,
      ...(tls ? { servername: isIP(hostname) === 0 ? hostname : '' } : {}),
    });
  } catch (err) {
    lease.observe(true);
    lease.end();
    return sendProblem(ctx, route.chain, handshakeFailure(err as Error));
  }

  let open = false;
  let failure: ErrorCode | null = null;
  let clientGone = false;
  const timer = setTimeout(() => {
    failure = 'TP_UPSTREAM_TIMEOUT';
    ws.terminate();
  }, route.connectTimeout);
  ws.on('error', (err) => {
    if (open) {
      ctx.errorCode ||= 'TP_UPSTREAM_RESET';
      return;
    }
    clearTimeout(timer);
    if (clientGone || res.destroyed) return;
    // A non-101 (404, 401 ...) is a 502 here: the client never gets the upstream's own answer.
    lease.observe(true);
    sendProblem(ctx, route.chain, failure ?? handshakeFailure(err));
  });

  let blocked = false;
  let sendTimer: NodeJS.Timeout | null = null;
  const onDrain = () => {
    blocked = false;
    ws.resume();
  };
  const block = () => {
    blocked = true;
    ws.pause();
    res.once('drain', onDrain);
    if (route.sendTimeout === 0) return;
    if (sendTimer === null)
      sendTimer = setTimeout(() => {
        if (!blocked || res.destroyed) return;
        ctx.errorCode = 'TP_SEND_TIMEOUT';
        res.destroy();
      }, route.sendTimeout);
    else sendTimer.refresh();
  };

  ws.once('open', () => {
    open = true;
    clearTimeout(timer);
    lease.observe(false);
    if (clientGone) {
      ws.close(1001);
      return;
    }
    const head: ResponseHead = {
      status: 200,
      // no-transform keeps compress from holding events back; SSE bodies get no body stages (header hooks only).
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      },
      body: null,
    };
    try {
      finishHead(route.chain, ctx, head);
    } catch (err) {
      ws.terminate();
      return failInternally(ctx, route.chain.echoRequestId, err);
    }
    res.writeHead(head.status, head.headers);
    res.flushHeaders();
  });

  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (res.destroyed || res.writableEnded) return;
    const event = sseEvent(data as Buffer, isBinary);
    ctx.bytesOut += Buffer.byteLength(event);
    if (!res.write(event) && !blocked) block();
  });

  ws.once('close', () => {
    clearTimeout(timer);
    if (sendTimer !== null) clearTimeout(sendTimer);
    lease.end();
    // The upstream closed (or we closed it for a leaving client): the client's stream ends with it.
    if (open && !res.destroyed && !res.writableEnded) res.end();
  });

  res.once('close', () => {
    if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
    if (!open) {
      clientGone = true;
      ctx.status = 499; // NGINX's "client closed request", for the log only
      clearTimeout(timer);
      ws.terminate();
      return;
    }
    if (!res.writableFinished) clientGone = true;
    // A paused socket would never read the upstream's answer to our close frame.
    ws.resume();
    ws.close(1001);
  });
}
