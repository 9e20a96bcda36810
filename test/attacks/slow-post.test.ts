// B03 (nginx `client_body_timeout`): slow POST (R.U.D.Y.), requests whose head is complete and whose body stalls or
// trickles. `limits.bodyTimeout` (60 s by default, NGINX's value; here 1 s) is the idle time allowed between two
// reads of the body while the gateway is reading it; past it the client gets 408 (problem+json) and a close, and
// the upstream request, already started because bodies stream, is aborted: the backend sees a body that never
// completes and its connection is released. A body that keeps trickling is bounded by `requestTimeout` (Node's
// whole-request timeout), also 408. The wait is not counted while the upstream pushes back (the gateway is not
// reading then).
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { openClient, openFds, type RawClient } from '../helpers/slow-clients.ts';
import { until } from '../helpers/wait.ts';

const CONNECTIONS = scale(100, 1000);
const BODY_TIMEOUT = scale('1s', '10s');

/** Well under requestTimeout (60 s): a stalled body that is not cut by bodyTimeout fails the test. */
const LIMIT = { timeout: scale(15_000, 60_000) };

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({
    upstream: backend.url,
    // requestTimeout stays at its 60 s: what cuts a stalled body here can only be bodyTimeout.
    limits: `bodyTimeout: ${BODY_TIMEOUT}\nheaderTimeout: ${BODY_TIMEOUT}`,
  });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** The upstream request of `client`'s POST to `path` arrived and ended without completing. */
async function abortedUpstream(path: string): Promise<void> {
  await until(() => backend.arrivals.find((a) => a.url === path), `${path} to reach the backend`);
  const i = backend.arrivals.findIndex((a) => a.url === path);
  await backend.untilArrivals(i + 1);
  await until(() => backend.arrivals.filter((a) => a.url === path && !a.complete).length === 1, `${path} aborted`);
  assert.equal(backend.arrivals.find((a) => a.url === path)!.complete, false);
}

function assert408(text: string): void {
  assert.match(text, /^HTTP\/1\.1 408 /, text);
  assert.match(text, /content-type: application\/problem\+json/);
  assert.match(text, /"code":"TP_REQUEST_TIMEOUT"/);
  assert.match(text, /connection: close/i);
}

test(
  'a Content-Length body that stalls gets 408 and a close, and the backend sees its body aborted',
  LIMIT,
  async () => {
    const c = await openClient(gw.http);
    c.socket.write('POST /public/stall-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n' + 'x'.repeat(1000));
    assert408(await c.done);
    await abortedUpstream('/public/stall-cl');
  },
);

test('a chunked body that stalls gets 408 and a close, and the backend sees its body aborted', LIMIT, async () => {
  const c = await openClient(gw.http);
  c.socket.write(
    'POST /public/stall-te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n' +
      'x'.repeat(1000) +
      '\r\n',
  );
  assert408(await c.done);
  await abortedUpstream('/public/stall-te');
});

test('HTTP/2: a body that stalls gets 408 and the backend sees its body aborted', LIMIT, async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  try {
    const req = session.request({ ':method': 'POST', ':path': '/public/stall-h2', 'content-length': '1048576' });
    req.on('error', () => {});
    req.write(Buffer.alloc(1000, 0x78));
    const status = await new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
    assert.equal(status, 408);
    await abortedUpstream('/public/stall-h2');
  } finally {
    session.destroy();
  }
});

test('a body sent in pieces with pauses under bodyTimeout (longer than it in all) is forwarded whole', async () => {
  const c = await openClient(gw.http);
  const pieces = 6;
  c.socket.write(`POST /public/paced HTTP/1.1\r\nHost: a\r\nContent-Length: ${pieces * 100}\r\n\r\n`);
  // The client's own pace (the case itself, not a wait in the test): a piece every fifth of the timeout.
  const pace = scale(200, 2000);
  for (let i = 0; i < pieces; i++) {
    c.socket.write('y'.repeat(100));
    if (i < pieces - 1) await new Promise((resolve) => setTimeout(resolve, pace));
  }
  await c.until((t) => t.includes('"sha256"'), 'the response');
  assert.match(c.text(), /^HTTP\/1\.1 200 /);
  const a = backend.arrivals.find((x) => x.url === '/public/paced')!;
  assert.equal(a.complete, true);
  assert.equal(a.body.length, pieces * 100);
  c.socket.destroy();
});

test('a body trickled a byte at a time under bodyTimeout is still cut at requestTimeout with 408', async () => {
  const gw2 = await startAttackGateway({
    upstream: backend.url,
    limits: `bodyTimeout: ${BODY_TIMEOUT}\nheaderTimeout: ${BODY_TIMEOUT}\nrequestTimeout: ${scale('2s', '20s')}`,
  });
  const c = await openClient(gw2.http);
  c.socket.write('POST /public/trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n');
  const timer = setInterval(() => !c.closed() && c.socket.write('z'), scale(100, 1000));
  try {
    assert408(await c.done);
    await abortedUpstream('/public/trickle');
  } finally {
    clearInterval(timer);
    await gw2.stop();
  }
});

test(
  `${CONNECTIONS} stalled uploads at once: each gets 408, each upstream request is aborted, descriptors return`,
  LIMIT,
  async () => {
    const fdsBefore = openFds();
    const seen = backend.arrivals.length;
    const clients: RawClient[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = await openClient(gw.http);
      c.socket.write(`POST /public/many-${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n` + 'x'.repeat(100));
      clients.push(c);
    }
    for (const text of await Promise.all(clients.map((c) => c.done))) assert408(text);
    await backend.untilArrivals(seen + CONNECTIONS);
    const mine = backend.arrivals.filter((a) => a.url.startsWith('/public/many-'));
    assert.equal(mine.length, CONNECTIONS);
    assert.equal(mine.filter((a) => a.complete).length, 0);
    await until(() => openFds() <= fdsBefore + 10, `open fds back near ${fdsBefore} (now ${openFds()})`);
  },
);
