// Raw TCP exchanges, for requests no well-behaved client would send, and control over how bytes are segmented.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** Sends `payload` and resolves with everything read until the server closes (or `timeoutMs`). */
export function rawExchange(
  port: number,
  payload: string | Buffer,
  timeoutMs = 3000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    socket.write(payload);
  });
}

export interface ServerReads {
  /** Sizes of the reads the accepted socket made from the kernel, in order (until a native reader takes it). */
  readonly sizes: number[];
  /** Resolves once `bytes` have been read in all. */
  until(bytes: number): Promise<void>;
  stop(): void;
}

/**
 * Watches the reads of the connections this process accepts on `port` (a gateway started in-process), leaving
 * their stream state alone. Lets a test send bytes as separate reads (write, wait until read, write again) and
 * check that bytes written together were read together.
 */
export function watchServerReads(port: number): ServerReads {
  const sizes: number[] = [];
  let total = 0;
  const progress = new EventEmitter();
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    if (socket.localPort !== port) return;
    const push = socket.push;
    // A socket read hands its bytes to push(); unshift() does not go through it, so replays are not counted.
    socket.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk != null) {
        sizes.push((chunk as Buffer).length);
        total += (chunk as Buffer).length;
      }
      const more = push.call(this, chunk, encoding);
      progress.emit('read');
      return more;
    };
  };
  subscribe('net.server.socket', onSocket);
  return {
    sizes,
    async until(bytes) {
      while (total < bytes) await once(progress, 'read');
    },
    stop: () => unsubscribe('net.server.socket', onSocket),
  };
}

/**
 * A TLS client over the connected `raw` socket whose first flight (the ClientHello) leaves in ONE write with
 * `prefix` in front of it, as a load balancer sends its PROXY header and the client's first bytes together.
 * `firstWrite` is that write.
 */
export function tlsAfterPrefix(
  raw: Socket,
  prefix: Buffer,
  options: ConnectionOptions,
): { tls: TLSSocket; firstWrite: Promise<Buffer> } {
  let pending: Buffer | null = prefix;
  let wrote!: (b: Buffer) => void;
  const firstWrite = new Promise<Buffer>((resolve) => (wrote = resolve));
  const duplex = new Duplex({
    read: () => void raw.resume(),
    write(chunk: Buffer, _encoding, cb) {
      const out = pending === null ? chunk : Buffer.concat([pending, chunk]);
      if (pending !== null) wrote(out);
      pending = null;
      raw.write(out, cb);
    },
    final: (cb) => void raw.end(cb),
    destroy: (err, cb) => {
      raw.destroy();
      cb(err);
    },
  });
  raw.on('data', (d: Buffer) => {
    if (!duplex.push(d)) raw.pause();
  });
  raw.on('end', () => duplex.push(null));
  raw.on('error', (err) => duplex.destroy(err));
  return { tls: tlsConnect({ ...options, socket: duplex }), firstWrite };
}
