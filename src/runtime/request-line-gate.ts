// Reads the first request line of an HTTP/1 connection before node:http sees it, for two things llhttp gets wrong
// for a proxy: after an HTTP/0.9 line (`GET /\r\n`) it waits for headers, so the client hears nothing until the
// header timeout; and a request line longer than maxHeaderSize is reported as a header overflow (431), not as a
// long target (414), after buffering the whole head. Both are answered here at once. Later requests on a kept-alive
// connection are not gated (refuseHead checks their target; clientError tells a long line from long headers).
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors.ts';

/** The listener's current settings (read per connection: a reload applies to new connections). */
export interface GateSettings {
  readonly maxUriLength: number;
  readonly headerTimeout: number;
}

export type GateRefusal = (socket: Socket, code: ErrorCode, detail: string) => void;

/** Bytes after the target (` HTTP/1.1\r\n`) before a line is left to llhttp to refuse. */
const VERSION_BYTES = 16;
const LF = 10;
const CR = 13;
const SP = 32;

/**
 * An entry that gates each connection's first request line, then hands the connection to `h1`. Only a line that
 * looks like `METHOD target` is held: any other byte hands the connection to llhttp at once, which refuses it.
 */
export function requestLineGate(h1: Server, settings: () => GateSettings | undefined, refuse: GateRefusal): Server {
  const entry = new EventEmitter();
  entry.on('listening', () => h1.emit('listening'));
  entry.on('connection', (socket: Socket) => {
    const current = settings();
    if (current === undefined) return socket.destroy();
    const maxUri = current.maxUriLength;
    let seen: Buffer = Buffer.alloc(0);
    let phase = 0; // 0 empty lines, 1 method, 2 target, 3 version
    let pos = 0;
    let mark = 0; // where the target (phase 2) or the version (phase 3) began
    let decided = false;
    const decide = (): void => {
      decided = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    const refuseNow = (code: ErrorCode, detail: string): void => {
      decide();
      refuse(socket, code, detail);
      // The answer ends our side; a client that never closes its side is not kept.
      socket.setTimeout(current.headerTimeout, () => socket.destroy());
    };
    const handOver = (): void => {
      decide();
      socket.pause();
      // node:http emits what is put back before its native reads take over (the connection stays on the fast
      // path; only TLS and node:http2 skip replayed bytes, see readThroughJs).
      socket.unshift(seen);
      h1.emit('connection', socket);
      socket.resume();
    };
    // The gate holds the connection before node:http's header timeout runs, so it keeps one of its own.
    const timer = setTimeout(
      () => refuseNow('TP_REQUEST_TIMEOUT', 'the request line was not received in time'),
      current.headerTimeout,
    );
    const onEnd = (): void => {
      decide();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      for (; pos < seen.length; pos++) {
        const c = seen[pos]!;
        if (phase === 0) {
          // RFC 9112 §2.2: empty lines before the request line are ignored.
          if (c === CR || c === LF) continue;
          phase = 1;
        }
        if (phase === 1) {
          if (c >= 65 && c <= 90) continue; // llhttp knows only upper-case methods
          if (c !== SP) return handOver();
          phase = 2;
          mark = pos + 1;
        } else if (phase === 2) {
          if (c > SP && c < 127) {
            if (pos - mark < maxUri) continue;
            return refuseNow('TP_URI_TOO_LONG', `the request target may be at most ${maxUri} bytes`);
          }
          if (c === CR || c === LF) {
            return refuseNow('TP_BAD_REQUEST', 'the request line has no HTTP version (HTTP/0.9 is not served)');
          }
          if (c !== SP) return handOver();
          phase = 3;
          mark = pos;
        } else if (c === LF || pos - mark > VERSION_BYTES) return handOver();
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', () => {
      if (!decided) decide();
      socket.destroy();
    });
  });
  return entry as unknown as Server;
}
