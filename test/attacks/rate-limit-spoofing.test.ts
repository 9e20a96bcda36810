// R01 (X02's trust rules): one peer rotating X-Forwarded-For, X-Real-IP, X-Client-IP, True-Client-IP, Forwarded and
// CF-Connecting-IP on every request. The listener trusts no proxy, so the client address the rate limit of /api
// keys on (key: ip) is the real peer whatever the headers say: after N requests per window every further one is
// 429 TP_RATE_LIMITED with Retry-After, and the backend saw exactly N.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

const N = 5;
let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: N });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const spoof = (i: number) => {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return (
    `X-Forwarded-For: ${ip}\r\nX-Real-IP: ${ip}\r\nX-Client-IP: ${ip}\r\nTrue-Client-IP: ${ip}\r\n` +
    `CF-Connecting-IP: ${ip}\r\nForwarded: for=${ip}\r\nX-Forwarded-For: 192.0.2.${i & 255}\r\n`
  );
};

test('rotating client-address headers never earn a fresh bucket: 429 with Retry-After after N, the backend sees N', async () => {
  const token = await gw.token();
  const total = scale(60, 1000);
  const statuses: number[] = [];
  let retryAfter = '';
  const before = backend.arrivals.length;
  for (let i = 0; i < total; i++) {
    const { text } = await rawExchange(
      gw.http,
      `GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\n${spoof(i)}Connection: close\r\n\r\n`,
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    statuses.push(status);
    if (status === 429) {
      retryAfter = /\r\nretry-after: (\d+)\r\n/i.exec(text)?.[1] ?? '';
      assert.match(text, /"code":"TP_RATE_LIMITED"/);
    }
  }
  assert.deepEqual(statuses.slice(0, N), Array(N).fill(200));
  assert.deepEqual(statuses.slice(N), Array(total - N).fill(429));
  assert.ok(Number(retryAfter) > 0, `Retry-After: ${retryAfter}`);
  assert.equal(backend.arrivals.length - before, N);
});

test('the same over HTTP/2 streams: still the one peer bucket, already spent', async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  const token = await gw.token();
  try {
    const statuses = await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) =>
          new Promise<number>((resolve, reject) => {
            const req = session.request({
              ':path': '/api/x',
              authorization: `Bearer ${token}`,
              'x-forwarded-for': `10.9.9.${i}`,
              'x-real-ip': `10.9.9.${i}`,
            });
            req.on('response', (h) => resolve(Number(h[':status'])));
            req.on('error', reject);
            req.resume();
            req.end();
          }),
      ),
    );
    assert.deepEqual(statuses, Array(10).fill(429));
  } finally {
    session.close();
  }
});
