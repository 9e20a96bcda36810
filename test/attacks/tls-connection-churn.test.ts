// Z03 (connection churn): new TLS connections, one request each, against a real gateway process, with the ways a
// connection can end early mixed in (a FIN before the ClientHello, a ClientHello cut short, a reset mid-handshake,
// a client that never speaks). Verdict: the gateway's file descriptor count comes back to its baseline, and every
// completed request reached the backend exactly once. Bounded here (300 connections); `npm run attacks -- --full`
// makes 5,000 (the catalogue's 50,000 a minute is a load-generator figure: h2load -c with one request each).
// Two faults this found (and the fixes): the listening sockets were half-open for TLS too, so a client's FIN
// before its handshake was never acted on (CLOSE_WAIT until Node's 120 s handshake timeout); and that timeout was
// Node's 120 s rather than the listener's headerTimeout. (The 15 s timeouts below only stop a hang: unfixed, these
// connections stay open for 120 s.)
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { FULL, scale } from '../helpers/attack-scale.ts';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { until } from '../helpers/wait.ts';

let backend: RecordingBackend;
let gw: GatewayProcess;
let pki: TestPki;
let ca: Ca;
let patient: number; // headerTimeout 1h: only a prompt close can end a connection there within the test
let strict: number; // headerTimeout 1s

before(async () => {
  const made = makeTestPki();
  pki = made.pki;
  ca = made.serverCa;
  const cert = pki.server(ca, { names: ['localhost'] });
  backend = await startRecordingBackend();
  const tlsBlock = `tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }`;
  gw = await spawnGateway(
    `
listeners:
  - { name: patient, protocol: https, address: 127.0.0.1, port: 0, limits: { headerTimeout: 1h }, ${tlsBlock} }
  - { name: strict, protocol: https, address: 127.0.0.1, port: 0, limits: { headerTimeout: 1s }, ${tlsBlock} }
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app }]
`,
    { listeners: 2 },
  );
  patient = gw.port('patient');
  strict = gw.port('strict');
});
after(async () => {
  await gw.stop();
  await backend.close();
  pki.remove();
});

const fds = () => readdirSync(`/proc/${gw.pid}/fd`).length;

/** Resolves when the gateway has closed this raw connection (its FIN or reset arrived). */
function closedByGateway(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.resume();
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** The first bytes of a real ClientHello (made by node:tls into a capturing socket), to cut it short. */
async function clientHelloPrefix(): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', resolve)));
  const c = tls.connect({ host: '127.0.0.1', port, servername: 'localhost' });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  server.close();
  return hello.subarray(0, 40);
}

test(
  'a client that sends FIN before its ClientHello is closed at once (not at the handshake timeout)',
  { timeout: 15_000 },
  async () => {
    const s = await connect(patient);
    const closed = closedByGateway(s);
    s.end();
    await closed;
  },
);

test('a client that cuts its ClientHello short and sends FIN is closed at once', { timeout: 15_000 }, async () => {
  const s = await connect(patient);
  const closed = closedByGateway(s);
  s.end(await clientHelloPrefix());
  await closed;
});

test(
  "a client that never sends a ClientHello is closed at the listener's headerTimeout",
  { timeout: 15_000 },
  async () => {
    const s = await connect(strict);
    await closedByGateway(s);
  },
);

test('after churn of new TLS connections, one request each, the gateway holds no more descriptors than before', async () => {
  const total = scale(300, 5000);
  const concurrency = 20;
  const hello = await clientHelloPrefix();
  const handshakes: number[] = [];
  // Warm: the first request builds the upstream pool; its idle connection stays either way.
  await request();
  const baseline = fds();
  const arrivalsBefore = backend.arrivals.length;
  let requests = 0;
  let next = 0;
  async function request(): Promise<void> {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port: patient, path: '/churn', ca: ca.cert, servername: 'localhost', agent: false },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      req.on('socket', (s) => s.once('secureConnect', () => handshakes.push(performance.now() - t0)));
      req.on('error', reject);
    });
  }
  /** A client that leaves early and does not wait to be closed: only the descriptor count says if it was. */
  async function early(kind: number): Promise<void> {
    const s = await connect(patient);
    s.on('error', () => {});
    if (kind === 0)
      s.end(); // FIN before the ClientHello
    else if (kind === 1)
      s.end(hello); // part of a ClientHello, then FIN
    else {
      s.write(hello); // part of a ClientHello, then a reset
      s.resetAndDestroy();
    }
  }
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        if (i % 10 < 7) {
          await request();
          requests++;
        } else await early((i % 10) - 7);
      }
    }),
  );
  await until(() => fds() <= baseline, `the gateway's descriptors back to ${baseline} (now ${fds()})`, 10_000);
  assert.equal(backend.arrivals.length - arrivalsBefore, requests);
  handshakes.sort((a, b) => a - b);
  const p = (q: number) => handshakes[Math.floor((handshakes.length - 1) * q)]!.toFixed(1);
  // Reported, not asserted (shared machine): what the report quotes.
  console.log(
    `# churn${FULL ? ' (full)' : ''}: ${total} connections, ${requests} requests, fds ${baseline} -> ${fds()}, ` +
      `TLS handshake p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`,
  );
});
