// The tcp-stream scenario's two ends, in processes of their own so their CPU is not the proxy's:
//   node bench/scenarios/stream-peer.ts --serve           → prints its port; a sink and a source of bytes
//   node bench/scenarios/stream-peer.ts --port P --mode upload|download --bytes N   → prints {"bytes","seconds"}
// Protocol: the client sends 'U' or 'D' and the length (8 bytes, big-endian). Upload: the client sends that many
// bytes, the server answers the count it received (8 bytes) and closes. Download: the server sends that many bytes
// and closes.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CHUNK = Buffer.alloc(1 << 20, 'x');

function writeAll(socket: net.Socket, bytes: number, done: () => void): void {
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}

export function serve(port = 0): Promise<net.Server> {
  const server = net.createServer((socket) => {
    let head = Buffer.alloc(0);
    let mode: 'U' | 'D' | undefined;
    let want = 0;
    let got = 0;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (mode === undefined) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 9) return;
        mode = head.toString('latin1', 0, 1) === 'U' ? 'U' : 'D';
        want = Number(head.readBigUInt64BE(1));
        chunk = head.subarray(9);
        if (mode === 'D') {
          writeAll(socket, want, () => socket.end());
          return;
        }
      }
      if (mode === 'U') {
        got += chunk.length;
        if (got >= want) {
          const ack = Buffer.alloc(8);
          ack.writeBigUInt64BE(BigInt(got));
          socket.end(ack);
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

export interface Transfer {
  readonly bytes: number;
  readonly seconds: number;
}

/** One transfer through `port`: resolves once every byte went through, rejects on a short count or an error. */
export function transfer(
  port: number,
  mode: 'upload' | 'download',
  bytes: number,
  timeoutMs = 120_000,
): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let got = 0;
    let ack = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error(`${mode} timed out after ${got} bytes`)), timeoutMs);
    socket.on('error', (err) => (clearTimeout(timer), reject(err)));
    socket.on('connect', () => {
      const head = Buffer.alloc(9);
      head.write(mode === 'upload' ? 'U' : 'D', 0, 'latin1');
      head.writeBigUInt64BE(BigInt(bytes), 1);
      socket.write(head);
      if (mode === 'upload') writeAll(socket, bytes, () => {});
    });
    socket.on('data', (chunk: Buffer) => {
      if (mode === 'download') got += chunk.length;
      else ack = Buffer.concat([ack, chunk]);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.end();
      const seconds = (performance.now() - t0) / 1000;
      const through = mode === 'download' ? got : ack.length >= 8 ? Number(ack.readBigUInt64BE(0)) : 0;
      if (through !== bytes) reject(new Error(`${mode}: ${through} of ${bytes} bytes went through`));
      else resolve({ bytes, seconds });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      port: { type: 'string', default: '0' },
      mode: { type: 'string', default: 'download' },
      bytes: { type: 'string', default: String(1 << 30) },
    },
  });
  if (values.serve) {
    const server = await serve(Number(values.port));
    process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
    process.stdin.on('end', () => process.exit(0)); // the bench holds stdin open; gone means we go
    process.stdin.resume();
    process.on('SIGTERM', () => process.exit(0));
  } else {
    try {
      const t = await transfer(
        Number(values.port),
        values.mode === 'upload' ? 'upload' : 'download',
        Number(values.bytes),
      );
      process.stdout.write(`${JSON.stringify(t)}\n`);
    } catch (err) {
      process.stdout.write(`FAILED ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
