// B05, companion (NGINX `keepalive_requests`, Envoy `max_requests_per_connection`): one connection held for ever by
// a client that keeps sending requests. `limits.maxRequestsPerConnection` (1000 by default, NGINX's value) ends a
// connection after that many requests: on HTTP/1.1 the last response says `Connection: close` and the socket
// closes (a request pipelined past it never reaches the backend); on HTTP/2 a GOAWAY follows the last stream and
// the streams in progress finish.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { h2Request } from '../helpers/h2.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { openClient } from '../helpers/slow-clients.ts';

const MAX = 3;

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url, limits: `maxRequestsPerConnection: ${MAX}` });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const count = (path: string) => backend.arrivals.filter((a) => a.url === path).length;
const heads = (text: string) => text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((r) => r.startsWith('HTTP/1.1'));

test(`HTTP/1.1: requests before request ${MAX} keep the connection; request ${MAX} says Connection: close and the socket closes`, async () => {
  const c = await openClient(gw.http);
  for (let i = 1; i <= MAX; i++) {
    const from = c.text().length;
    c.socket.write(`GET /public/seq HTTP/1.1\r\nHost: a\r\n\r\n`);
    const text = await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t.slice(from)), `answer ${i}`);
    const head = text.slice(from, text.indexOf('\r\n\r\n', from)).toLowerCase();
    assert.match(head, /^http\/1\.1 200 /);
    if (i < MAX) assert.match(head, /connection: keep-alive/);
    else assert.match(head, /connection: close/);
  }
  await c.done;
  assert.equal(count('/public/seq'), MAX);
});

test(`HTTP/1.1: a request pipelined past request ${MAX} never reaches the backend`, async () => {
  const c = await openClient(gw.http);
  c.socket.write(`GET /public/pipe HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(MAX + 1));
  const text = await c.done;
  const answers = heads(text);
  assert.equal(answers.filter((h) => h.startsWith('HTTP/1.1 200 ')).length, MAX, text);
  assert.match(answers[MAX - 1]!.toLowerCase(), /connection: close/);
  assert.equal(count('/public/pipe'), MAX);
});

test(`HTTP/1.1 over TLS: the response to request ${MAX} closes the connection`, async () => {
  const socket = tlsConnect({
    port: gw.https,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: gw.ca,
    ALPNProtocols: ['http/1.1'],
  });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  socket.write(`GET /public/tls HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(MAX + 1));
  await new Promise((resolve) => socket.once('close', resolve));
  assert.equal(heads(text).filter((h) => h.startsWith('HTTP/1.1 200 ')).length, MAX, text);
  assert.equal(count('/public/tls'), MAX);
});

test(`HTTP/2: ${MAX} streams are served, then GOAWAY; the session ends`, async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  session.on('error', () => {});
  const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
  for (let i = 0; i < MAX; i++) {
    const r = await h2Request(session, { ':path': '/public/h2' });
    assert.equal(r.status, 200);
  }
  assert.equal(await goaway, 0);
  await new Promise((resolve) => session.once('close', resolve));
  assert.equal(count('/public/h2'), MAX);
});
