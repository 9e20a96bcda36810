// T01 (iperf3 / socat baselines): a random stream through the TCP proxy, the client half-closes (shutdown(SHUT_WR))
// and then reads: sha256 equal both ways, the FIN reaches the backend, the backend's answer after the half-close is
// delivered; then many short connections; then the gateway process holds no more descriptors than before. Bounded
// here (16 MiB, 1,000 connections); `npm run attacks -- --full` streams 1 GiB and makes 10,000. The same for a tcp
// listener that terminates TLS, where a client's FIN before its handshake must also close the connection at once.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { scale } from '../helpers/attack-scale.ts';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { until } from '../helpers/wait.ts';

interface Received {
  sha256: string;
  bytes: number;
  ended: boolean;
}

let echo: net.Server; // echoes, and half-closes after the client's FIN (when everything is echoed)
let late: net.Server; // reads to the client's FIN, then answers the sha256 of what it got
const receivedByEcho: Received[] = [];
let gw: GatewayProcess;
let pki: TestPki;
let ca: Ca;

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

before(async () => {
  echo = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = createHash('sha256');
    const r: Received = { sha256: '', bytes: 0, ended: false };
    receivedByEcho.push(r);
    s.on('data', (d: Buffer) => {
      hash.update(d);
      r.bytes += d.length;
    });
    s.on('end', () => {
      r.ended = true;
      r.sha256 = hash.digest('hex');
    });
    s.on('error', () => {});
    s.pipe(s);
  });
  late = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = createHash('sha256');
    s.on('data', (d: Buffer) => hash.update(d));
    s.on('end', () => s.end(`${hash.digest('hex')}\n`));
    s.on('error', () => {});
  });
  const echoPort = await listen(echo);
  const latePort = await listen(late);
  ({ pki, serverCa: ca } = makeTestPki());
  const cert = pki.server(ca, { names: ['localhost'] });
  const tlsBlock = `tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }`;
  gw = await spawnGateway(
    `
listeners:
  - { name: echo, protocol: tcp, address: 127.0.0.1, port: 0, upstream: echo }
  - { name: late, protocol: tcp, address: 127.0.0.1, port: 0, upstream: late }
  - { name: tls-late, protocol: tcp, address: 127.0.0.1, port: 0, upstream: late, ${tlsBlock} }
upstreams:
  echo: { targets: [{ url: "tcp://127.0.0.1:${echoPort}" }] }
  late: { targets: [{ url: "tcp://127.0.0.1:${latePort}" }] }
routes: []
`,
    { listeners: 3 },
  );
});
after(async () => {
  await gw.stop();
  echo.close();
  late.close();
  pki.remove();
});

const fds = () => readdirSync(`/proc/${gw.pid}/fd`).length;

/** Sends `total` random bytes, half-closes, reads everything back; the hashes of both directions. */
async function stream(socket: net.Socket, total: number): Promise<{ sent: string; got: string; gotBytes: number }> {
  const block = randomBytes(1 << 20);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let gotBytes = 0;
  socket.on('data', (d: Buffer) => {
    got.update(d);
    gotBytes += d.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  for (let i = 0, left = total; left > 0; i++) {
    const chunk = Buffer.from(block.subarray(0, Math.min(left, block.length)));
    chunk.writeUInt32BE(i, 0); // every chunk distinct, so a repeated or dropped one changes the hash
    sent.update(chunk);
    left -= chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  socket.end(); // shutdown(SHUT_WR): the rest of the echo must still come back
  await ended;
  return { sent: sent.digest('hex'), got: got.digest('hex'), gotBytes };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.on('error', reject);
  });
}

test('a random stream comes back byte-identical after the client half-closes, and the FIN reached the backend', async () => {
  const total = scale(16 << 20, 1 << 30);
  const r = await stream(await connect(gw.port('echo')), total);
  const backend = receivedByEcho.at(-1)!;
  assert.equal(backend.ended, true);
  assert.equal(backend.bytes, total);
  assert.equal(backend.sha256, r.sent);
  assert.equal(r.gotBytes, total);
  assert.equal(r.got, r.sent);
});

test("the backend's answer written after the client's half-close is delivered (plain and TLS-terminated)", async () => {
  const payload = randomBytes(300_000);
  const expected = `${createHash('sha256').update(payload).digest('hex')}\n`;
  const plain = await connect(gw.port('late'));
  let text = '';
  plain.on('data', (d: Buffer) => (text += d.toString()));
  const plainEnded = new Promise((r) => plain.on('end', r));
  plain.end(payload);
  await plainEnded;
  assert.equal(text, expected);

  const secure = tls.connect({
    host: '127.0.0.1',
    port: gw.port('tls-late'),
    ca: ca.cert,
    servername: 'localhost',
  });
  await new Promise((r) => secure.once('secureConnect', r));
  let secureText = '';
  secure.on('data', (d: Buffer) => (secureText += d.toString()));
  const secureEnded = new Promise((r) => secure.on('end', r));
  secure.end(payload);
  await secureEnded;
  assert.equal(secureText, expected);
});

test(
  'a client that sends FIN before its TLS handshake on a TLS-terminating tcp listener is closed at once',
  { timeout: 15_000 },
  async () => {
    const s = await connect(gw.port('tls-late'));
    s.on('error', () => {});
    s.resume();
    const closed = new Promise((r) => s.on('close', r));
    s.end();
    await closed;
  },
);

test('many short connections each get their own bytes back, and no socket is left behind', async () => {
  const total = scale(1000, 10_000);
  const port = gw.port('echo');
  await stream(await connect(port), 10); // warm
  const baseline = fds();
  let next = 0;
  let wrong = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < total) {
        const i = next++;
        const s = await connect(port);
        const message = `connection ${i} ${randomBytes(8).toString('hex')}`;
        let back = '';
        s.on('data', (d: Buffer) => (back += d.toString()));
        const ended = new Promise((r) => s.on('end', r));
        s.end(message);
        await ended;
        s.destroy();
        if (back !== message) wrong++;
      }
    }),
  );
  assert.equal(wrong, 0);
  await until(() => fds() <= baseline, `the gateway's descriptors back to ${baseline} (now ${fds()})`, 10_000);
});
