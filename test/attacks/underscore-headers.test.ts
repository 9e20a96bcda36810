// X06 (Envoy headers_with_underscores_action): `X_Auth_User: admin`, `Content_Length: 5`. The row allows 400 (edge
// mode) or the header dropped. Turnpike drops them by default (`limits.headersWithUnderscores: drop`, NGINX's
// underscores_in_headers off) and refuses with 400 under `reject` (Envoy's REJECT_REQUEST), per listener too; either
// way nothing with an underscore reaches the backend, and `Content_Length` never frames a body.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;
let strict: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
  strict = await startAttackGateway({ upstream: backend.url, limits: 'headersWithUnderscores: reject' });
});
after(async () => {
  await gw.stop();
  await strict.stop();
  await backend.close();
});

const noUnderscoreUpstream = () => {
  for (const a of backend.arrivals) {
    const names = a.rawHeaders.filter((_, i) => i % 2 === 0);
    assert.ok(!names.some((n) => n.includes('_')), `${a.url}: ${names.join(', ')}`);
  }
  assert.ok(!/\r\n[^\r\n:]*_[^\r\n:]*:/.test(backend.raw.join('')), 'no underscore name in the bytes upstream');
};

test('by default underscore headers are dropped: the request goes on without them', async () => {
  for (const [i, line] of [
    'X_Auth_User: admin',
    'x_auth_user: admin',
    'X-Auth_User: admin',
    '_: 1',
    'X_: 1',
  ].entries()) {
    const url = `/public/us-${i}`;
    const r = await exchange(gw.http, `GET ${url} HTTP/1.1\r\nHost: a\r\n${line}\r\nConnection: close\r\n\r\n`);
    assert.equal(r.responses[0]?.status, 200, r.text);
    assert.ok(backend.arrivals.some((a) => a.url === url));
  }
  noUnderscoreUpstream();
});

test('by default Content_Length neither frames the body nor reaches the backend', async () => {
  // The bytes after the head are the next request, which is routed and authenticated like any other.
  const r = await exchange(
    gw.http,
    'POST /public/cl HTTP/1.1\r\nHost: a\r\nContent_Length: 33\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.deepEqual(
    r.responses.map((x) => x.status),
    [200, 401],
  );
  const got = backend.arrivals.find((a) => a.url === '/public/cl')!;
  assert.equal(got.body.length, 0);
  assert.ok(!backend.arrivals.some((a) => a.url.startsWith('/admin')));
  noUnderscoreUpstream();
});

test('with headersWithUnderscores: reject, they are refused with 400 + close and never forwarded', async () => {
  for (const line of ['X_Auth_User: admin', 'Content_Length: 5', 'x_forwarded_for: 10.0.0.1']) {
    await assertRefused(
      strict.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\nhello`,
      400,
      'TP_BAD_REQUEST',
    );
  }
  noUnderscoreUpstream();
});

test('an underscore header cannot authenticate: /admin stays 401 with X_Api_Key', async () => {
  const r = await exchange(
    gw.http,
    'GET /admin/x HTTP/1.1\r\nHost: a\r\nX_Api_Key: admin-key-0123456789\r\nConnection: close\r\n\r\n',
  );
  assert.equal(r.responses[0]?.status, 401);
});
