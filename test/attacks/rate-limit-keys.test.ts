// R02 (Envoy/Traefik rate-limit keys): spellings of one path must share one bucket. The rate limit belongs to the
// /api route and keys on the client address; the path is normalised before routing (P01: `//` merged, `%78` read
// as `x`), so `/api/x`, `/api//x`, `/api/x/`, `/api/x?`, `//api/x`, `/api/./x` and `/api/%78` all meet the one
// route and its one bucket. `/API/x` is another path (case is significant, as in NGINX, Envoy and HAProxy): it is
// not the /api route, reaches the open catch-all and is forwarded as `/API/x`; with `limits.caseSensitivePaths: false`
// it is the /api route and shares its bucket (the row's "same bucket"). Each HTTP/2 stream counts as one
// request. No IPv6 /64 aggregation (the row's optional part): each address is its own key.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;

before(async () => {
  backend = await startRecordingBackend();
});
after(() => backend.close());

async function get(port: number, target: string, token: string) {
  const { text } = await rawExchange(
    port,
    `GET ${target} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  );
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

const SPELLINGS = ['/api/x', '/api//x', '/api/x/', '/api/x?', '//api/x', '/api/./x', '/api/%78', '/api/y/../x'];

test('every spelling of /api/x counts against the one bucket: the request past the limit is 429 whatever its spelling', async () => {
  const gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: SPELLINGS.length });
  try {
    const token = await gw.token();
    const before = backend.arrivals.length;
    for (const target of SPELLINGS) assert.equal(await get(gw.http, target, token), 200, target);
    for (const target of SPELLINGS) assert.equal(await get(gw.http, target, token), 429, target);
    assert.equal(backend.arrivals.length - before, SPELLINGS.length);
    const paths = new Set(backend.arrivals.slice(before).map((a) => a.url.split('?')[0]));
    assert.deepEqual([...paths].sort(), ['/api/x', '/api/x/']);
  } finally {
    await gw.stop();
  }
});

test('/API/x is another path: not the /api route, forwarded as /API/x, never as /api/x', async () => {
  const gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: 1 });
  try {
    const before = backend.arrivals.length;
    assert.equal(await get(gw.http, '/API/x', 'x'), 200);
    assert.deepEqual(
      backend.arrivals.slice(before).map((a) => a.url),
      ['/API/x'],
    );
  } finally {
    await gw.stop();
  }
});

test('with caseSensitivePaths: false, /API/x, /Api/X and /api/x share the /api bucket', async () => {
  const gw = await startAttackGateway({
    upstream: backend.url,
    apiRequestsPerMinute: 2,
    limits: 'caseSensitivePaths: false',
  });
  try {
    const token = await gw.token();
    const before = backend.arrivals.length;
    const statuses = [];
    for (const target of ['/API/x', '/Api/X', '/api/x']) statuses.push(await get(gw.http, target, token));
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.deepEqual(
      backend.arrivals.slice(before).map((a) => a.url),
      ['/API/x', '/Api/X'],
    );
  } finally {
    await gw.stop();
  }
});

test('each HTTP/2 stream counts: of S multiplexed streams exactly N pass', async () => {
  const n = 10;
  const streams = scale(100, 1000);
  const gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: n });
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  try {
    session.setMaxListeners(0);
    const token = await gw.token();
    const before = backend.arrivals.length;
    const statuses = await Promise.all(
      Array.from(
        { length: streams },
        (_, i) =>
          new Promise<number>((resolve, reject) => {
            const req = session.request({ ':path': i % 2 ? '/api//x' : '/api/x', authorization: `Bearer ${token}` });
            req.on('response', (h) => resolve(Number(h[':status'])));
            req.on('error', reject);
            req.resume();
            req.end();
          }),
      ),
    );
    assert.equal(statuses.filter((s) => s === 200).length, n);
    assert.equal(statuses.filter((s) => s === 429).length, streams - n);
    await backend.untilArrivals(before + n);
    assert.equal(backend.arrivals.length - before, n);
  } finally {
    session.close();
    await gw.stop();
  }
});
