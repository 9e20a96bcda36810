// WebSocket and any other `Upgrade`: a raw tunnel after one HTTP/1.1 exchange with the target.
// The upstream's answer head is parsed so backend identity headers can be hidden; then bytes flow both ways
// and a close on either side closes the other.
import { STATUS_CODES } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Chain } from '../plugins/pipeline.ts';
import { runResponseHooks } from '../plugins/pipeline.ts';
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardedInfo } from './headers.ts';
import { errorCodeOf } from './http-forwarder.ts';
import { sendProblem } from './reply.ts';

const MAX_HEAD = 64 * 1024;

export interface TunnelRoute {
  readonly pool: UpstreamPool;
  readonly chain: Chain;
  readonly connectTimeout: number;
  readonly idleTimeout: number;
  readonly echoRequestId: string | null;
}

/** Opens the tunnel. `clientSocket` is the upgraded client connection, `head` the bytes read past its headers. */
export function tunnel(ctx: RequestContext, route: TunnelRoute, info: ForwardedInfo, clientSocket: Socket, head: Buffer, onOpen: (close: () => void) => () => void): void {
  const target = route.pool.pick(ctx);
  if (target === undefined) {
    sendProblem(ctx, route.chain, 'TP_NO_HEALTHY_TARGET', undefined, route.echoRequestId);
    return;
  }
  ctx.target = target.url;
  const origin = target.origin;
  const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
  const host = origin.hostname.replace(/^\[|\]$/g, '');
  const upstream: Socket =
    origin.protocol === 'https:' ? tlsConnect({ host, port, servername: host }) : netConnect({ host, port });
  upstream.setNoDelay(true);
  upstream.setTimeout(route.connectTimeout);

  const headers = upstreamRequestHeaders(ctx, info, true);
  let request = `${ctx.req.method} ${ctx.path}${ctx.query} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) request += `${headers[i]}: ${headers[i + 1]}\r\n`;
  upstream.write(request + '\r\n');
  if (head.length > 0) upstream.write(head);

  let received: Buffer = Buffer.alloc(0);
  let answered = false;
  const fail = (err: Error) => {
    if (answered) return;
    answered = true;
    upstream.destroy();
    sendProblem(ctx, route.chain, errorCodeOf(err), undefined, route.echoRequestId);
  };
  upstream.once('timeout', () => fail(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })));
  upstream.once('error', fail);
  upstream.once('end', () => fail(Object.assign(new Error('upstream closed'), { code: 'ECONNRESET' })));
  const onData = (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const end = received.indexOf('\r\n\r\n');
    if (end === -1) {
      if (received.length > MAX_HEAD) fail(Object.assign(new Error('upstream head too large'), { code: 'HPE_HEADER_OVERFLOW' }));
      return;
    }
    upstream.off('data', onData);
    upstream.removeAllListeners('timeout').removeAllListeners('error').removeAllListeners('end');
    answered = true;
    const parsed = parseHead(received.subarray(0, end).toString('latin1'));
    if (parsed === null) {
      answered = false;
      fail(Object.assign(new Error('bad upstream head'), { code: 'HPE_INVALID' }));
      return;
    }
    const rest = received.subarray(end + 4);
    const responseHead: ResponseHead = { status: parsed.status, headers: clientResponseHeaders(parsed.headers, route.pool.hidden) };
    if (parsed.status === 101) {
      // Connection and Upgrade are hop-by-hop, but a 101 must carry them.
      responseHead.headers.connection = 'Upgrade';
      if (parsed.headers.upgrade !== undefined) responseHead.headers.upgrade = parsed.headers.upgrade;
    }
    if (route.chain.response.length > 0) runResponseHooks(route.chain, ctx, responseHead);
    if (route.echoRequestId !== null) responseHead.headers[route.echoRequestId] = ctx.requestId;
    ctx.status = responseHead.status;
    clientSocket.write(serializeHead(responseHead, parsed.reason));
    if (rest.length > 0) clientSocket.write(rest);
    splice(clientSocket, upstream, route.idleTimeout, ctx, onOpen);
  };
  upstream.on('data', onData);
  const abortEarly = () => {
    if (!answered) {
      answered = true;
      upstream.destroy();
    }
  };
  clientSocket.once('close', abortEarly);
}

function splice(client: Socket, upstream: Socket, idleTimeout: number, ctx: RequestContext, onOpen: (close: () => void) => () => void): void {
  upstream.setTimeout(idleTimeout);
  client.setTimeout(idleTimeout);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    upstream.destroy();
    release();
  };
  const release = onOpen(close);
  upstream.on('data', (chunk: Buffer) => {
    ctx.bytesOut += chunk.length;
  });
  client.on('data', (chunk: Buffer) => {
    ctx.bytesIn += chunk.length;
  });
  client.pipe(upstream);
  upstream.pipe(client);
  client.once('timeout', close);
  upstream.once('timeout', close);
  client.once('error', close);
  upstream.once('error', close);
  client.once('close', close);
  upstream.once('close', close);
}

interface ParsedHead {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string | string[]>;
}

function parseHead(text: string): ParsedHead | null {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { status: Number(m[1]), reason: m[2] ?? '', headers };
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
