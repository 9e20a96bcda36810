// B02 (nginx `client_header_timeout`; Node `headersTimeout` + `connectionsCheckingInterval`): slowloris, many
// connections that send their request head a few bytes at a time and never finish it, while benign clients keep
// being served. The header timeout counts from the connection's first byte, not between bytes, so dripping does not
// extend it: each slow connection gets 408 (problem+json) and is closed. Found and fixed here: a connection on an
// h2c listener that sends nothing (or part of the HTTP/2 preface) was in neither server's timeout and stayed open
// for ever; HTTP/1.1 over TLS ran with http2's defaults (60 s, checked every 30 s) instead of `headerTimeout`;
// a TLS handshake never finished waited 120 s. slowhttptest is not on these machines: the clients are node:net.
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { request } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';
import { openClient, openFds, type RawClient } from '../helpers/slow-clients.ts';

const SLOW = scale(200, 2000);
const HEADER_TIMEOUT = scale('1s', '10s');

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url, limits: `headerTimeout: ${HEADER_TIMEOUT}` });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** Drips `head` one byte per tick of `everyMs` until the connection closes or the head is all sent. */
function drip(c: RawClient, head: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (c.closed() || i >= head.length) return clearInterval(timer);
    c.socket.write(head[i++]!);
  }, everyMs);
  c.done.then(() => clearInterval(timer));
}

test(`${SLOW} slowloris connections each get 408 and are closed, while benign requests all succeed`, async () => {
  const fdsBefore = openFds();
  // A head that would take minutes at this pace; it never ends.
  const head = 'GET /public/slow HTTP/1.1\r\nHost: a\r\n' + 'X-a: b\r\n'.repeat(200);
  const clients: RawClient[] = [];
  for (let i = 0; i < SLOW; i++) {
    const c = await openClient(gw.http);
    c.socket.write(head.slice(0, 27));
    drip(c, head.slice(27), 200);
    clients.push(c);
  }
  // Benign traffic while the slow connections are held.
  let benign = 0;
  for (let i = 0; i < 50; i++) {
    const r = await request(gw.http, `/public/ok-${i}`);
    assert.equal(r.status, 200);
    benign++;
  }
  assert.equal(benign, 50);
  const texts = await Promise.all(clients.map((c) => c.done));
  for (const text of texts) {
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /application\/problem\+json/);
    assert.match(text, /"code":"TP_REQUEST_TIMEOUT"/);
  }
  assert.ok(!backend.arrivals.some((a) => a.url === '/public/slow'), 'no slow request reached the backend');
  // Every slow socket is gone from the gateway's side too (counted on this process's descriptors).
  await until(() => openFds() <= fdsBefore + 10, `open fds back near ${fdsBefore} (now ${openFds()})`);
});

test('a connection that sends nothing is closed at the header timeout (HTTP/1.1 + h2c listener)', async () => {
  const c = await openClient(gw.http);
  const text = await c.done;
  assert.match(text, /^HTTP\/1\.1 408 /);
});

test('a connection that sends part of the HTTP/2 preface and stops is closed at the header timeout', async () => {
  const c = await openClient(gw.http);
  c.socket.write('PRI * HTTP/2.0\r\n');
  await c.done;
  assert.equal(c.closed(), true);
});

test('an h2c session that never sends a request is closed at the header timeout', async () => {
  const c = await openClient(gw.http);
  c.socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  c.socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // an empty SETTINGS frame
  const text = await c.done;
  // The GOAWAY frame (type 7) came before the close.
  assert.ok(Buffer.from(text, 'latin1').includes(Buffer.from([0x07, 0x00, 0x00, 0x00, 0x00, 0x00])), 'GOAWAY');
});

test('HTTP/1.1 over TLS: a head dripped byte by byte gets 408 at the header timeout', async () => {
  const socket = tlsConnect({
    port: gw.https,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: gw.ca,
    ALPNProtocols: ['http/1.1'],
  });
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  socket.write('GET /public/slow HTTP/1.1\r\nHost: a\r\n');
  const timer = setInterval(() => socket.writable && socket.write('X-a: b\r\n'), 200);
  await new Promise((resolve) => socket.once('close', resolve));
  clearInterval(timer);
  assert.match(text, /^HTTP\/1\.1 408 /);
});

test('a TLS connection that never sends a ClientHello is closed at the header timeout', async () => {
  const c = await openClient(gw.https);
  await c.done;
  assert.equal(c.closed(), true);
});

test('an idle keep-alive connection on the h2c listener is closed at keepAliveTimeout with no stray answer', async () => {
  const gw2 = await startAttackGateway({
    upstream: backend.url,
    limits: `headerTimeout: ${HEADER_TIMEOUT}\nkeepAliveTimeout: ${HEADER_TIMEOUT}`,
  });
  try {
    const c = await openClient(gw2.http);
    c.socket.write('GET /public/once HTTP/1.1\r\nHost: a\r\n\r\n');
    const first = await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t), 'the answer');
    const text = await c.done;
    assert.equal(text, first, 'nothing after the one answer');
  } finally {
    await gw2.stop();
  }
});
