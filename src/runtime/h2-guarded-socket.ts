// The Duplex an HTTP/2 session reads a client's socket through: each chunk passes the frame guard first, and a
// connection the guard or nghttp2 ends gets its GOAWAY before FIN.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { H2FrameGuard, H2Violation } from './h2-frame-guard.ts';

const GOAWAY_GRACE = 1000;

/**
 * Puts a Duplex between a client's socket and its HTTP/2 session so each chunk passes the guard first; on a
 * violation it writes GOAWAY(code) itself, ends the socket and calls `onViolation`. The Duplex carries the socket's
 * addresses and, for TLS, what the request path reads of the TLS socket.
 */
export function guardedDuplex(
  socket: Socket,
  first: Buffer | null,
  guard: H2FrameGuard | null,
  onViolation: (v: H2Violation) => void,
): Duplex {
  let ended = false;
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _enc, cb) => void socket.write(chunk, cb),
    final: (cb) => void socket.end(cb),
    destroy: (err, cb) => {
      // The session is done (it may just have written a GOAWAY): FIN after what is queued, not a reset.
      ended = true;
      linger(socket);
      cb(err);
    },
  });
  for (const name of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(duplex, name, { get: () => socket[name] });
  }
  // Read live from the TLS socket when asked (servername, for one, is not an own property at this point).
  const tls = socket as unknown as Record<string, unknown>;
  for (const name of TLS_PROPERTIES) {
    Object.defineProperty(duplex, name, {
      get: () => {
        const value = tls[name];
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(socket) : value;
      },
    });
  }
  Object.defineProperty(duplex, '_parent', { value: socket }); // PROXY protocol's client, if any
  const feed = (d: Buffer): void => {
    if (ended) return;
    const violation = guard === null ? null : guard.inspect(d);
    if (violation !== null) {
      ended = true;
      socket.write(goawayFrame(guard!.lastStream, violation.code));
      linger(socket);
      onViolation(violation);
      duplex.destroy();
      return;
    }
    if (!duplex.push(d)) socket.pause();
  };
  if (first !== null) feed(first);
  socket.on('data', feed);
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.resume();
  return duplex;
}

const TLS_PROPERTIES = [
  'encrypted',
  'alpnProtocol',
  'servername',
  'authorized',
  'authorizationError',
  'getPeerCertificate',
  'getPeerX509Certificate',
  'getCertificate',
  'getCipher',
  'getProtocol',
  'getSession',
  'isSessionReused',
  'getEphemeralKeyInfo',
  'getFinished',
  'getPeerFinished',
  'exportKeyingMaterial',
] as const;

/**
 * Ends `socket` after what is queued (a GOAWAY); what the client still sends is read and dropped, since a close
 * with unread bytes resets the connection and can lose the GOAWAY, for at most a second.
 */
function linger(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  socket.resume();
  socket.setTimeout(GOAWAY_GRACE, () => socket.destroy());
}

function goawayFrame(lastStream: number, code: number): Buffer {
  const f = Buffer.alloc(17);
  f.writeUIntBE(8, 0, 3);
  f[3] = 7;
  f.writeUInt32BE(lastStream, 9);
  f.writeUInt32BE(code, 13);
  return f;
}

/**
 * The TLS socket a request came on: its own socket, or for HTTP/2 behind the frame guard the TLS socket the guard
 * reads (Node wraps the guard's Duplex in a JSStreamSocket, which has none of the TLS socket's properties: SNI,
 * the client certificate).
 */
export function tlsSocketOf(socket: unknown): TLSSocket {
  const parent = (socket as { stream?: { _parent?: unknown } }).stream?._parent;
  return (parent ?? socket) as TLSSocket;
}
