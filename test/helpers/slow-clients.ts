// Slow and idle clients written with node:net (slowhttptest is not on these machines), and the counts the slow-client
// rows of the attack catalogue are judged on: open file descriptors, sockets closed, what each client read.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

/** A raw client connection that keeps everything it reads and notes when the peer closes. */
export interface RawClient {
  readonly socket: Socket;
  /** Everything read so far, as latin1 text. */
  text(): string;
  /** True once the gateway closed (or reset) the connection. */
  closed(): boolean;
  /** Resolves when the connection is closed, with everything read. */
  readonly done: Promise<string>;
  /** Resolves once the text read so far satisfies `check` (or the connection closes first: then rejects). */
  until(check: (text: string) => boolean, what: string): Promise<string>;
}

/** Opens a connection to 127.0.0.1:`port` (from `localAddress` when given) and resolves once it is connected. */
export async function openClient(port: number, localAddress?: string): Promise<RawClient> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  const chunks: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {}); // a reset is a close here: the verdict reads `closed()` and the text
  const done = new Promise<string>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve(Buffer.concat(chunks).toString('latin1'));
    }),
  );
  await once(socket, 'connect');
  const text = () => Buffer.concat(chunks).toString('latin1');
  return {
    socket,
    text,
    closed: () => isClosed,
    done,
    async until(check, what) {
      while (!check(text())) {
        if (isClosed) throw new Error(`connection closed before ${what}; read: ${text().slice(0, 300)}`);
        await Promise.race([once(socket, 'data'), done]);
      }
      return text();
    },
  };
}

/** Open file descriptors of this process (the gateway runs in it): sockets, pipes, files. Linux only. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Writes `n` copies of `chunk` to `socket` honouring backpressure; resolves when all were handed to the kernel. */
export async function writeRepeated(socket: Socket, chunk: Buffer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (socket.destroyed) return;
    if (!socket.write(chunk))
      await new Promise((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)));
  }
}
