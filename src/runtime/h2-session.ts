// What the h2c and TLS listeners share about HTTP/2 sessions: nghttp2's settings, the frame guard in front of each
// connection, the stream idle timeout, and refusals published for what ends a session before any request.
import { constants, type Http2Session, type Http2Stream, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EventEmitter } from 'node:events';
import { normalizeAddress } from '../proxy/client-ip.ts';
import { publishRefusal } from '../observability/events.ts';
import { PROBLEM_TYPE, problemBody } from '../pipeline/problem.ts';
import { H2FrameGuard, type H2Violation } from './h2-frame-guard.ts';
import { guardedDuplex } from './h2-guarded-socket.ts';
import { handleRequest, type ListenerHost } from './http-listener.ts';
import { peerAddressOf, proxiedClient } from './proxy-protocol-gate.ts';
import type { CompiledListener } from './snapshot.ts';

/** nghttp2's own bounds for a listener's sessions. */
export function sessionOptions(listener: CompiledListener) {
  return {
    settings: {
      maxConcurrentStreams: listener.h2.maxConcurrentStreams,
      maxHeaderListSize: listener.maxHeaderSize,
      enablePush: false,
    },
    maxHeaderListPairs: 256,
    // Bounds on abuse nghttp2 can count for us: protocol errors and refused streams per session.
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
  };
}

/** The listener as the current snapshot has it (a reload may have changed its limits). */
function currentListener(host: ListenerHost, listener: CompiledListener): CompiledListener {
  return host.current.listeners.get(listener.key) ?? listener;
}

function refuse(host: ListenerHost, listener: CompiledListener, socket: unknown, code: string): void {
  const s = socket as Socket;
  publishRefusal({
    gateway: host.gateway,
    listener: listener.config.name,
    protocol: 'h2',
    clientIp: normalizeAddress(proxiedClient(s)?.address ?? peerAddressOf(s) ?? ''),
    code,
  });
}

const violationCode = (v: H2Violation): string =>
  v.code === constants.NGHTTP2_ENHANCE_YOUR_CALM ? 'TP_H2_FLOOD' : 'TP_H2_PROTOCOL';

/** The Duplex an HTTP/2 session reads `socket` through, past the frame guard (`first`: bytes already read). */
export function guardSocket(
  host: ListenerHost,
  listener: CompiledListener,
  socket: Socket,
  first: Buffer | null,
): Socket {
  const guard = new H2FrameGuard(currentListener(host, listener).h2);
  return guardedDuplex(socket, first, guard, (v) => refuse(host, listener, socket, violationCode(v))) as Socket;
}

/**
 * Puts the frame guard in front of the HTTP/2 connections `server` hands to its own `event` listeners (the TLS
 * server's 'secureConnection'): those for which `isH2` holds get the guarded Duplex, the others the socket itself.
 */
export function guardConnections(
  host: ListenerHost,
  listener: CompiledListener,
  server: EventEmitter,
  event: string,
  isH2: (socket: Socket) => boolean,
): void {
  const own = server.listeners(event) as ((this: unknown, socket: Socket) => void)[];
  server.removeAllListeners(event);
  server.on(event, (socket: Socket) => {
    const given = isH2(socket) ? guardSocket(host, listener, socket, null) : socket;
    for (const l of own) l.call(server, given);
  });
}

/** Tracks a new session; maps nghttp2's protocol errors to GOAWAY(PROTOCOL_ERROR); arms stream idle timeouts. */
export function onSession(
  host: ListenerHost,
  listener: CompiledListener,
  sessions: Set<Http2Session>,
  session: Http2Session,
): void {
  sessions.add(session);
  session.once('close', () => sessions.delete(session));
  // nghttp2's session errors caused by the client (DATA beyond content-length, §8.1.1; too many CONTINUATION
  // frames) end in GOAWAY(INTERNAL_ERROR) in Node: they are the client's errors, answered with the RFC's code.
  const destroy = session.destroy;
  session.destroy = function (this: Http2Session, err?: Error, code?: number) {
    const mapped = code === undefined ? clientErrorCode(err) : undefined;
    if (mapped === undefined) return destroy.call(this, err, code);
    refuse(
      host,
      listener,
      session.socket,
      mapped === constants.NGHTTP2_ENHANCE_YOUR_CALM ? 'TP_H2_FLOOD' : 'TP_H2_PROTOCOL',
    );
    return destroy.call(this, err, mapped);
  };
  const idle = currentListener(host, listener).h2StreamIdleTimeout;
  session.on('stream', (stream: ServerHttp2Stream) => stream.setTimeout(idle, onStreamIdle));
}

function clientErrorCode(err: Error | undefined): number | undefined {
  const e = err as { errno?: number; code?: string } | undefined;
  // maxSessionInvalidFrames passed: frames nghttp2 refused, over and over.
  if (e?.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return constants.NGHTTP2_ENHANCE_YOUR_CALM;
  return CLIENT_ERRORS.get(e?.errno ?? 0);
}

/** nghttp2 error numbers (nghttp2.h) that name a client's fault, and the GOAWAY code each deserves. */
const CLIENT_ERRORS = new Map<number, number>([
  [-505, constants.NGHTTP2_PROTOCOL_ERROR], // NGHTTP2_ERR_PROTO
  [-524, constants.NGHTTP2_FLOW_CONTROL_ERROR], // NGHTTP2_ERR_FLOW_CONTROL
  [-903, constants.NGHTTP2_PROTOCOL_ERROR], // NGHTTP2_ERR_BAD_CLIENT_MAGIC
  [-904, constants.NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_FLOODED
  [-905, constants.NGHTTP2_ENHANCE_YOUR_CALM], // NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
]);

/** No frame either way for the idle timeout (a client holding a zero window included): the stream is reset. */
function onStreamIdle(this: Http2Stream): void {
  this.close(constants.NGHTTP2_CANCEL);
}

/**
 * An HTTP/2 request whose header list is over maxHeaderSize is answered 431 before anything else (nghttp2 only
 * advertises the limit; Node's own check counts differently). One declaring content-length: 0 whose stream is
 * still open is handled once it ends: any DATA
 * with bytes is a malformed message (§8.1.1) that nghttp2 refuses, and that must be seen before forwarding.
 */
export function handleH2Request(host: ListenerHost, key: string, req: IncomingMessage, res: ServerResponse): void {
  const stream = (req as unknown as { stream?: ServerHttp2Stream }).stream;
  const listener = host.current.listeners.get(key);
  if (stream !== undefined && listener !== undefined && headerListSize(req.rawHeaders) > listener.maxHeaderSize) {
    refuse(host, listener, req.socket, 'TP_HEADERS_TOO_LARGE');
    res.writeHead(431, { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' });
    res.end(problemBody('TP_HEADERS_TOO_LARGE', `the header list may be at most ${listener.maxHeaderSize} bytes`));
    return;
  }
  if (stream === undefined || req.headers['content-length'] !== '0' || stream.endAfterHeaders || req.readableEnded) {
    handleRequest(host, key, req, res);
    return;
  }
  req.once('end', () => {
    if (!stream.destroyed && !stream.session?.destroyed) handleRequest(host, key, req, res);
  });
  req.resume();
}

/** RFC 9113 §6.5.2's size of a header list: each field's name and value, plus 32 (pseudo-headers included). */
function headerListSize(raw: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length + (i % 2 === 0 ? 32 : 0);
  return size;
}
