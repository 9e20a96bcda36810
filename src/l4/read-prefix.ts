// Reads the first bytes of a connection until a parser has what it needs (a TLS ClientHello, a PROXY header),
// without answering anything: one growing buffer, a deadline, and the socket left without a reader either way.
import type { Socket } from 'node:net';

export interface PrefixReader<T> {
  /** Parses what has arrived: a result, null for "more bytes", or throws the error to reject with. */
  parse(data: Buffer): T | null;
  /** The buffer size to grow towards when `length` bytes are held (lets a parser cap it at what it announced). */
  grow?(data: Buffer, needed: number): number;
  readonly timeout: () => Error;
  readonly gone: () => Error;
  /** Bytes held without a result before giving up (the parser may throw earlier). */
  readonly maxBytes: number;
  readonly tooLarge: (held: number) => Error;
  /**
   * Runs with the result inside the read, before the promise settles: bytes read past the prefix must be put
   * back (socket.unshift) right there, before the next reader attaches.
   */
  readonly done?: (value: T, data: Buffer) => void;
}

export function readPrefix<T>(
  socket: Socket,
  timeoutMs: number,
  reader: PrefixReader<T>,
): Promise<{ value: T; data: Buffer }> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded) {
      reject(reader.gone());
      return;
    }
    let buf = Buffer.allocUnsafe(256);
    let length = 0;
    let settled = false;
    // 'readable' and read(), not 'data' and pause(): with the listener gone the socket has no reader again
    // (readableFlowing null), so the next reader starts it as it would a fresh connection. A paused socket needs a
    // resume() from outside, which flows the bytes put back to nobody if the next reader waits (the tcp proxy
    // waits for its upstream).
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onGone = () => fail(reader.gone());
    const onChunk = (chunk: Buffer) => {
      // One growing buffer: a prefix trickling in byte by byte costs linear, not quadratic, copying.
      if (length + chunk.length > buf.length) {
        const needed = length + chunk.length;
        const target = reader.grow?.(buf.subarray(0, length), needed) ?? buf.length * 2;
        const grown = Buffer.allocUnsafe(Math.max(needed, target));
        buf.copy(grown, 0, 0, length);
        buf = grown;
      }
      chunk.copy(buf, length);
      length += chunk.length;
      const data = buf.subarray(0, length);
      let value: T | null;
      try {
        value = reader.parse(data);
      } catch (err) {
        return fail(err as Error);
      }
      if (value !== null) {
        cleanup();
        reader.done?.(value, data);
        resolve({ value, data });
      } else if (length > reader.maxBytes) {
        fail(reader.tooLarge(length));
      }
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) onChunk(chunk);
    };
    const timer = setTimeout(() => fail(reader.timeout()), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onGone);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
}
