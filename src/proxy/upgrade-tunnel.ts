// WebSocket and any other `Upgrade`: one HTTP/1.1 exchange with the target, then a raw tunnel.
// Node's HTTP client parses the upstream's answer: a 101 turns into a byte tunnel (backend identity headers
// hidden), any other answer is relayed as a normal response with its own framing, and the client connection
// is closed after it, so nothing the client sends past a refused upgrade reaches the upstream unrouted.
import { createHash } from 'node:crypto';
import { STATUS_CODES, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { finishHead, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { sendProblem } from '../pipeline/reply.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { clientResponseHeaders, upstreamRequestHeaders, type UpstreamHeaderPolicy } from './headers.ts';
import { errorCodeOf } from './http-forwarder.ts';
import { failureKindOf } from './retry-policy.ts';
import { publishAttemptEnd, publishAttemptStart } from '../observability/events.ts';

const MAX_HEAD = 64 * 1024;

export interface TunnelRoute extends UpstreamHeaderPolicy {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  readonly connectTimeout: number;
  readonly idleTimeout: number;
  /** Protocols besides WebSocket the route tunnels (`upgrades:`), or null. */
  readonly upgrades: ReadonlySet<string> | null;
}

/**
 * Whether an Upgrade request is tunnelled: WebSocket only. Any other protocol (h2c above all: its HTTP/2 bytes
 * would reach the backend past every route plugin) is served as an ordinary request without its upgrade.
 */
export function tunnelsUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(upgrade);
}

/** Whether the Upgrade header `offered` lists `protocol` (lower case), e.g. `h2c, foo/2` lists `foo/2`. */
export function offers(offered: string, protocol: string): boolean {
  for (const p of offered.split(',')) if (p.trim().toLowerCase() === protocol) return true;
  return false;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * The upstream's 101 names a protocol the client offered and the route tunnels, and for WebSocket answers the
 * client's key (RFC 6455 §4.2.2).
 */
function acceptsHandshake(req: IncomingMessage, res: IncomingMessage, upgrades: ReadonlySet<string> | null): boolean {
  const asked = req.headers.upgrade;
  const got = res.headers.upgrade?.trim().toLowerCase();
  if (asked === undefined || got === undefined) return false;
  if (got !== 'websocket') return upgrades !== null && upgrades.has(got) && offers(asked, got);
  if (!offers(asked, 'websocket')) return false;
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string') return false;
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  return res.headers['sec-websocket-accept'] === accept;
}

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Opens the tunnel. `clientSocket` is the upgraded client connection, `head` the bytes read past its headers. */
export function tunnel(
  ctx: RequestContext,
  route: TunnelRoute,
  clientSocket: Socket,
  head: Buffer,
  onOpen: (close: () => void) => () => void,
): void {
  const lease = route.pool.beginRequest(ctx);
  if (typeof lease === 'string') {
    sendProblem(ctx, route.chain, lease);
    return;
  }
  // Counted on its target for the client connection's whole life, so least-connections sees WebSockets.
  if (clientSocket.closed) lease.end();
  else clientSocket.once('close', () => lease.end());
  const target = lease.target;
  ctx.target = target.url;
  ctx.attempts = 1;
  // The handshake is the try (a trace's client span, the upstream metrics); the tunnel's life is the request's.
  const started = performance.now();
  const attemptHeaders = publishAttemptStart(ctx, target.url, 1);
  let attemptOpen = true;
  const endAttempt = (status: number, failure: string | null): void => {
    if (!attemptOpen) return;
    attemptOpen = false;
    publishAttemptEnd(ctx, ctx.upstreamName, target.url, 1, status, performance.now() - started, failure);
  };
  const origin = target.origin;
  const tls = origin.protocol === 'https:';
  const host = origin.hostname.replace(/^\[|\]$/g, '');
  let req: ClientRequest;
  try {
    req = (tls ? httpsRequest : httpRequest)({
      host,
      port: Number(origin.port || (tls ? 443 : 80)),
      method: ctx.req.method,
      path: ctx.path + ctx.query,
      // A flat [name, value, ...] list is sent as is (Host included), keeping Connection: upgrade and Upgrade.
      headers: upstreamRequestHeaders(ctx, route, target.origin.host, true, attemptHeaders),
      setHost: false,
      agent: false,
      maxHeaderSize: MAX_HEAD,
      ...(tls ? { servername: isIP(host) === 0 ? host : '' } : {}),
    });
  } catch (err) {
    const code = errorCodeOf(err as Error);
    endAttempt(0, failureKindOf(code, ''));
    sendProblem(ctx, route.chain, code);
    return;
  }

  let answered = false;
  // Until the answer head arrives the connect timeout applies (as a budget, not an idle time).
  const timer = setTimeout(() => req.destroy(codedError('upstream timeout', 'ETIMEDOUT')), route.connectTimeout);
  const onClientGone = () => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    ctx.status = 499; // NGINX's "client closed request", for the log only
    endAttempt(0, 'client-gone');
    req.destroy();
  };
  clientSocket.once('close', onClientGone);
  const settle = (failed: boolean) => {
    lease.observe(failed);
    answered = true;
    clearTimeout(timer);
  };
  req.on('error', (err) => {
    clearTimeout(timer);
    if (!answered) {
      answered = true;
      lease.observe(true);
      const code = errorCodeOf(err);
      endAttempt(0, failureKindOf(code, (err as NodeJS.ErrnoException).code ?? ''));
      sendProblem(ctx, route.chain, code);
    } else if (ctx.res.headersSent && !ctx.res.writableFinished) {
      ctx.errorCode = 'TP_UPSTREAM_RESET';
      ctx.res.destroy();
    }
  });

  req.on('upgrade', (res: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
    // A 101 that does not complete the client's WebSocket handshake is no switch (RFC 6455 §4.1): tunnelling on
    // it would hand the client's next bytes (`GET /admin ...`) to the backend past every route (WebSocket smuggling).
    if (!acceptsHandshake(ctx.req, res, route.upgrades)) {
      upstream.destroy();
      settle(true);
      endAttempt(101, failureKindOf('TP_UPSTREAM_BAD_RESPONSE', ''));
      clientSocket.off('close', onClientGone);
      sendProblem(ctx, route.chain, 'TP_UPSTREAM_BAD_RESPONSE');
      return;
    }
    settle(false);
    endAttempt(101, null);
    clientSocket.off('close', onClientGone);
    if (clientSocket.destroyed) {
      upstream.destroy();
      return;
    }
    const responseHead: ResponseHead = {
      status: 101,
      headers: clientResponseHeaders(res.headers, route.pool.hidden),
      body: null,
    };
    // Connection and Upgrade are hop-by-hop, but a 101 must carry them.
    responseHead.headers.connection = 'Upgrade';
    if (res.headers.upgrade !== undefined) responseHead.headers.upgrade = res.headers.upgrade;
    try {
      finishHead(route.chain, ctx, responseHead);
    } catch (err) {
      upstream.destroy();
      return failInternally(ctx, route.chain.echoRequestId, err);
    }
    clientSocket.write(serializeHead(responseHead, res.statusMessage ?? ''));
    if (upstreamHead.length > 0) {
      ctx.bytesOut += upstreamHead.length;
      clientSocket.write(upstreamHead);
    }
    if (head.length > 0) {
      ctx.bytesIn += head.length;
      upstream.write(head);
    }
    splice(clientSocket, upstream, route.idleTimeout, ctx, onOpen);
  });

  req.on('response', (res: IncomingMessage) => {
    // Not upgraded: relay the answer as a normal response. The client's ServerResponse does not keep the
    // connection alive, so it says `Connection: close` and ends the socket after the body.
    settle(res.statusCode! >= 500);
    endAttempt(res.statusCode!, null);
    clientSocket.off('close', onClientGone);
    const out = ctx.res;
    if (out.destroyed) {
      req.destroy();
      return;
    }
    // The body of a refused upgrade is relayed as it is: no body stages.
    const responseHead: ResponseHead = {
      status: res.statusCode!,
      headers: clientResponseHeaders(res.headers, route.pool.hidden),
      body: null,
    };
    try {
      finishHead(route.chain, ctx, responseHead);
    } catch (err) {
      req.destroy();
      return failInternally(ctx, route.chain.echoRequestId, err);
    }
    if (responseHead.status === res.statusCode && res.statusMessage)
      out.writeHead(responseHead.status, res.statusMessage, responseHead.headers);
    else out.writeHead(responseHead.status, responseHead.headers);
    res.socket.setTimeout(route.idleTimeout, () => req.destroy(codedError('upstream idle', 'ETIMEDOUT')));
    out.once('close', () => {
      if (!res.complete) req.destroy();
    });
    res.on('data', (chunk: Buffer) => {
      ctx.bytesOut += chunk.length;
    });
    res.on('error', () => undefined); // the request's 'error' handler cuts the client
    res.pipe(out);
  });

  req.end();
}

/**
 * Pipes both ways with backpressure. An end on one side half-closes the other (after what was already
 * written has been flushed); an error or timeout on either side tears both down.
 */
function splice(
  client: Socket,
  upstream: Socket,
  idleTimeout: number,
  ctx: RequestContext,
  onOpen: (close: () => void) => () => void,
): void {
  upstream.setNoDelay(true);
  upstream.setTimeout(idleTimeout);
  client.setTimeout(idleTimeout);
  let done = false;
  let open = 2;
  const abort = () => {
    if (done) return;
    done = true;
    client.destroy();
    upstream.destroy();
    release();
  };
  const release = onOpen(abort);
  const closed = (socket: Socket, other: Socket) => () => {
    // A socket that closes without having read the peer's end was reset or destroyed: cut the other side too.
    // One that ended cleanly has already ended the other through pipe(), which flushes before it half-closes.
    if (!socket.readableEnded) other.destroy();
    if (--open === 0 && !done) {
      done = true;
      release();
    }
  };
  upstream.on('data', (chunk: Buffer) => {
    ctx.bytesOut += chunk.length;
  });
  client.on('data', (chunk: Buffer) => {
    ctx.bytesIn += chunk.length;
  });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('timeout', abort);
  upstream.on('timeout', abort);
  client.on('error', abort);
  upstream.on('error', abort);
  client.once('close', closed(client, upstream));
  upstream.once('close', closed(upstream, client));
  client.resume();
}

function serializeHead(head: ResponseHead, reason: string): string {
  let out = `HTTP/1.1 ${head.status} ${reason || STATUS_CODES[head.status] || ''}\r\n`;
  for (const name in head.headers) {
    const value = head.headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out += `${name}: ${v}\r\n`;
    else out += `${name}: ${value}\r\n`;
  }
  return out + '\r\n';
}
