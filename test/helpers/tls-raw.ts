// A raw HTTP/1.1 exchange over TLS (ALPN http/1.1), for the HTTPS listener's HTTP/1.1 side.
import { connect } from 'node:tls';
import { parseResponses, type RawResult } from './h1-verdict.ts';

/** Sends `payload` once the handshake is done; resolves when the server closes (or after `timeoutMs`). */
export function tlsExchange(port: number, ca: string, payload: string | Buffer, timeoutMs = 3000): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const socket = connect({ port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () =>
      socket.write(payload),
    );
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ responses: parseResponses(text), closed, text });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') return;
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      closed = true;
      done();
    });
  });
}
