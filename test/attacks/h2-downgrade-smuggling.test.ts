// H01 (PortSwigger "HTTP/2: the sequel"; RFC 9113 §8.1.1): an HTTP/2 request whose DATA disagrees with its
// content-length, sent to the h2c listener (prior knowledge) and to the TLS listener (ALPN h2). The row allows a
// stream reset or a 400; Turnpike ends the connection with GOAWAY(PROTOCOL_ERROR), the stream error treated as a
// connection error (§5.4.1 allows it): nghttp2 in Node reports the excess DATA as a session error, so the stream
// cannot be reset alone. A request declaring content-length: 0 whose stream is still open is held until it ends,
// so DATA with bytes is seen before anything is forwarded (it used to be answered 200). Whatever reaches the
// backend carries exactly the bytes its content-length says, and never a second request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { nextEvent } from '../helpers/events.ts';
import { dataFrame, ERROR, headersFrame, RawH2, request, type H2Target, type Outcome } from '../helpers/h2-frames.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

function assertRefused(o: Outcome): void {
  if (o.kind === 'response') assert.equal(o.status, 400, `answered ${o.status}`);
  else if (o.kind === 'reset' || o.kind === 'goaway') assert.equal(o.code, ERROR.PROTOCOL_ERROR, JSON.stringify(o));
  else assert.fail(`expected RST_STREAM/GOAWAY(PROTOCOL_ERROR) or 400, got ${JSON.stringify(o)}`);
}

/** Nothing smuggled, and every body that reached the backend is exactly as long as its content-length. */
function assertBackendConsistent(): void {
  assert.ok(!backend.raw.join('').includes('/smuggled'), 'the smuggled request line reached the backend');
  for (const a of backend.arrivals) {
    assert.notEqual(a.url, '/smuggled');
    const cl = a.headers['content-length'];
    if (a.complete && cl !== undefined) assert.equal(a.body.length, Number(cl), `${a.url}: body != content-length`);
  }
}

/** A benign request on the same kind of connection still works (the listener is not wedged). */
async function assertStillServes(target: H2Target): Promise<void> {
  const c = await RawH2.open(target);
  c.send(headersFrame(1, request('/public/ok'), { endStream: true }));
  const o = await c.outcome(1);
  c.close();
  assert.equal(o.kind === 'response' && o.status, 200);
}

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });
    const attack = async (path: string, cl: string | null, data: (string | Buffer)[], end = true) => {
      const c = await RawH2.open(target());
      const extra: [string, string][] = cl === null ? [] : [['content-length', cl]];
      const frames = [headersFrame(1, request(path, 'POST', extra))];
      data.forEach((d, i) => frames.push(dataFrame(1, d, end && i === data.length - 1)));
      c.send(...frames);
      const o = await c.outcome(1);
      c.close();
      return o;
    };

    test('content-length: 0 with a DATA frame carrying a request is reset, and /smuggled never reaches the backend', async () => {
      assertRefused(await attack('/public/cl0', '0', [SMUGGLED]));
      assertBackendConsistent();
      await assertStillServes(target());
    });

    test('content-length: 0 whose DATA comes after the gateway read the HEADERS is never answered 200', async () => {
      const c = await RawH2.open(target());
      c.send(headersFrame(1, request('/public/late', 'POST', [['content-length', '0']])));
      // A second stream answered proves the gateway has processed the first one's HEADERS.
      c.send(headersFrame(3, request('/public/probe'), { endStream: true }));
      const probe = await c.outcome(3);
      assert.equal(probe.kind === 'response' && probe.status, 200);
      const refused = nextEvent(
        'turnpike:client:refused',
        gw.gateway.runtime.gateway,
        (e) => e.protocol === 'h2' && e.code === 'TP_H2_PROTOCOL',
        'the refusal event',
      );
      c.send(dataFrame(1, SMUGGLED, true));
      assertRefused(await c.outcome(1));
      c.close();
      assert.equal((await refused).clientIp, '127.0.0.1');
      assert.equal(backend.arrivals.filter((a) => a.url === '/public/late').length, 0);
      assertBackendConsistent();
    });

    test('content-length: 5 with 40 bytes of DATA is reset; the backend never gets more than 5 bytes', async () => {
      assertRefused(await attack('/public/cl5', '5', ['x'.repeat(40)]));
      assertBackendConsistent();
    });

    test('content-length: 5 with 5 bytes, then 40 more in a second DATA frame, is reset', async () => {
      assertRefused(await attack('/public/cl5-split', '5', ['hello', SMUGGLED]));
      assertBackendConsistent();
    });

    test('content-length: 40 with only 5 bytes then END_STREAM is reset and not answered as complete', async () => {
      assertRefused(await attack('/public/short', '40', ['hello']));
      assertBackendConsistent();
      for (const a of backend.arrivals.filter((x) => x.url === '/public/short')) assert.equal(a.complete, false);
    });

    test('content-length: 0 followed by an empty DATA frame with END_STREAM is an ordinary request', async () => {
      const o = await attack('/public/empty', '0', ['']);
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      assertBackendConsistent();
    });

    test('a non-numeric or repeated content-length is refused and never forwarded', async () => {
      for (const cl of ['5, 5', '+5', '-1', '0x5', '5 5', '']) {
        const before = backend.arrivals.length;
        assertRefused(await attack(`/public/bad-cl`, cl, ['hello']));
        assert.equal(backend.arrivals.length, before, `content-length "${cl}" was forwarded`);
      }
    });

    test('a body without content-length reaches the backend whole, as the DATA frames said', async () => {
      const o = await attack('/public/nocl', null, ['hello ', 'world']);
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      const a = backend.arrivals.find((x) => x.url === '/public/nocl');
      assert.equal(a?.body.toString(), 'hello world');
    });
  });
}
