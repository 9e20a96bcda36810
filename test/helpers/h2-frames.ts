// HTTP/2 frames written by hand (RFC 9113 §4, §6), for what node:http2's client refuses to send: malformed
// headers, frames out of order, floods. A raw connection (h2c prior knowledge or TLS with ALPN h2) reads the
// server's frames back, decodes its header blocks and says how each stream ended.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeHeaderBlock, HpackDecoder } from './hpack.ts';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export type Field = readonly [string | Buffer, string | Buffer];

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** A HEADERS frame of literal fields (END_HEADERS unless `endHeaders: false`). */
export function headersFrame(
  stream: number,
  fields: readonly Field[],
  opts: { endStream?: boolean; endHeaders?: boolean } = {},
): Buffer {
  const flags = (opts.endStream ? FLAG.END_STREAM : 0) | (opts.endHeaders === false ? 0 : FLAG.END_HEADERS);
  return frame(FRAME.HEADERS, flags, stream, encodeHeaderBlock(fields));
}

export const continuationFrame = (stream: number, block: Buffer, endHeaders = false): Buffer =>
  frame(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, stream, block);

export const dataFrame = (stream: number, data: string | Buffer, endStream = false): Buffer =>
  frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, Buffer.from(data));

export function settingsFrame(pairs: readonly (readonly [number, number])[] = []): Buffer {
  const p = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export const settingsAck = (): Buffer => frame(FRAME.SETTINGS, FLAG.ACK, 0);

export const pingFrame = (data = Buffer.alloc(8), ack = false): Buffer =>
  frame(FRAME.PING, ack ? FLAG.ACK : 0, 0, data);

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

export const rstFrame = (stream: number, code: number): Buffer => frame(FRAME.RST_STREAM, 0, stream, u32(code));
export const windowUpdateFrame = (stream: number, increment: number): Buffer =>
  frame(FRAME.WINDOW_UPDATE, 0, stream, u32(increment));
export const priorityFrame = (stream: number, dependsOn: number, weight = 15): Buffer =>
  frame(FRAME.PRIORITY, 0, stream, Buffer.concat([u32(dependsOn), Buffer.from([weight])]));

/** The request pseudo-headers of a GET (or `method`) to `path` on authority `a`, followed by `extra`. */
export function request(path: string, method = 'GET', extra: readonly Field[] = []): Field[] {
  return [[':method', method], [':scheme', 'http'], [':authority', 'a'], [':path', path], ...extra];
}

/** How a stream ended, as the client saw it. */
export type Outcome =
  | { kind: 'response'; status: number; headers: [string, string][]; body: Buffer }
  | { kind: 'reset'; code: number }
  | { kind: 'goaway'; code: number }
  | { kind: 'closed' };

export interface H2Target {
  readonly port: number;
  /** TLS with ALPN h2, trusting this CA (the attack gateway's `ca`). */
  readonly ca?: string;
}

/** One raw HTTP/2 connection: writes what it is given, reads and keeps every frame the server sends. */
export class RawH2 {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  closed = false;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  private readonly blocks = new Map<number, [string, string][]>();
  private pendingBlock: { stream: number; parts: Buffer[] } | null = null;
  private readonly waiters = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * Connects, sends the preface and `settings` (unless `preface: false`), and acknowledges the server's SETTINGS
   * as they come (unless `ackSettings: false`).
   */
  static async open(
    target: H2Target,
    opts: { settings?: readonly (readonly [number, number])[]; preface?: boolean; ackSettings?: boolean } = {},
  ): Promise<RawH2> {
    const socket =
      target.ca === undefined
        ? connect(target.port, '127.0.0.1')
        : tlsConnect({
            port: target.port,
            host: '127.0.0.1',
            servername: 'localhost',
            ca: target.ca,
            ALPNProtocols: ['h2'],
          });
    await once(socket, target.ca === undefined ? 'connect' : 'secureConnect');
    const conn = new RawH2(socket);
    conn.ackSettings = opts.ackSettings !== false;
    if (opts.preface !== false) conn.send(PREFACE, settingsFrame(opts.settings ?? []));
    return conn;
  }

  private ackSettings = true;

  send(...chunks: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  /** Writes and resolves once the kernel took the bytes (a flood waits on this, never on time). */
  write(chunk: Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(chunk, (err) => resolve(err == null)));
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves with the first frame (received so far or later) for which `match` holds, or null on close. */
  async next(match: (f: Frame) => boolean, what = 'a frame', timeoutMs = 5000): Promise<Frame | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.closed) return null;
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.wait(deadline);
    }
  }

  /** The GOAWAY's error code once the server sends one, or null if it closed without one. */
  async goaway(timeoutMs = 5000): Promise<number | null> {
    const f = await this.next((f) => f.type === FRAME.GOAWAY, 'GOAWAY', timeoutMs);
    return f === null ? null : f.payload.readUInt32BE(4);
  }

  /** Resolves once the server closed the connection. */
  async untilClosed(timeoutMs = 5000): Promise<void> {
    await this.next(() => false, 'the connection to close', timeoutMs);
  }

  /** How `stream` ended: a whole response, a RST_STREAM, a GOAWAY that did not cover it, or a bare close. */
  async outcome(stream: number, timeoutMs = 5000): Promise<Outcome> {
    const ended = (f: Frame): boolean =>
      (f.stream === stream && (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0)) ||
      (f.type === FRAME.GOAWAY && (f.payload.readUInt32BE(0) & 0x7fffffff) < stream);
    const f = await this.next(ended, `the end of stream ${stream}`, timeoutMs);
    if (f === null) {
      const goaway = this.frames.find((g) => g.type === FRAME.GOAWAY);
      return goaway ? { kind: 'goaway', code: goaway.payload.readUInt32BE(4) } : { kind: 'closed' };
    }
    if (f.type === FRAME.GOAWAY) return { kind: 'goaway', code: f.payload.readUInt32BE(4) };
    if (f.type === FRAME.RST_STREAM) return { kind: 'reset', code: f.payload.readUInt32BE(0) };
    const headers = this.blocks.get(stream) ?? [];
    const body = Buffer.concat(
      this.frames.filter((d) => d.stream === stream && d.type === FRAME.DATA).map((d) => dataOf(d)),
    );
    return { kind: 'response', status: Number(headers.find(([n]) => n === ':status')?.[1]), headers, body };
  }

  private wait(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(1, deadline - performance.now()));
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.waiters.delete(done);
        resolve();
      }
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const len = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + len) break;
      const f: Frame = {
        type: this.buffered[3]!,
        flags: this.buffered[4]!,
        stream: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffered.subarray(9, 9 + len),
      };
      this.buffered = this.buffered.subarray(9 + len);
      this.onFrame(f);
      this.frames.push(f);
    }
    this.wake();
  }

  private onFrame(f: Frame): void {
    if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && this.ackSettings) this.send(settingsAck());
    if (f.type === FRAME.HEADERS) {
      let p = f.payload;
      const pad = f.flags & FLAG.PADDED ? p[0]! : 0;
      if (f.flags & FLAG.PADDED) p = p.subarray(1);
      if (f.flags & FLAG.PRIORITY) p = p.subarray(5);
      this.pendingBlock = { stream: f.stream, parts: [p.subarray(0, p.length - pad)] };
    } else if (f.type === FRAME.CONTINUATION && this.pendingBlock) {
      this.pendingBlock.parts.push(f.payload);
    } else return;
    if ((f.flags & FLAG.END_HEADERS) === 0 || this.pendingBlock === null) return;
    const fields = this.decoder.decode(Buffer.concat(this.pendingBlock.parts));
    const known = this.blocks.get(this.pendingBlock.stream);
    if (known === undefined) this.blocks.set(this.pendingBlock.stream, fields);
    else known.push(...fields); // trailers
    this.pendingBlock = null;
  }
}

function dataOf(f: Frame): Buffer {
  if ((f.flags & FLAG.PADDED) === 0) return f.payload;
  return f.payload.subarray(1, f.payload.length - f.payload[0]!);
}
