// P01 (Envoy normalize_path / merge_slashes / path_with_escaped_slashes_action, Traefik sanitizePath): path tricks
// that make a backend read `/admin` where the gateway saw a path of the open catch-all route. Turnpike normalises
// the path once (dot segments, escaped unreserved characters, `//` merged: limits.mergeSlashes, default true as in
// NGINX) and refuses with 400 TP_BAD_PATH what it cannot read unambiguously (escaped slashes by default, `;`, `..;`,
// `\`, escaped controls, edge spaces, overlong UTF-8); the path the router and ACLs saw is the path forwarded.
// Case is significant by default (RFC 3986 §6.2.2.1, as in NGINX, Envoy and HAProxy): `/ADMIN` is another resource,
// reaches the open route and is forwarded as `/ADMIN`, never as `/admin`. The row's `/ADMIN` (401 like `/admin`)
// is what `limits.caseSensitivePaths: false` gives (Envoy's case_sensitive: false), for backends that read paths
// without case (IIS, case-insensitive file systems): the last tests run the catalogue's gateway with it.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { ADMIN_KEY, startAttackGateway } from '../helpers/attack-gateway.ts';
import { h2Request } from '../helpers/h2.ts';
import { rawExchange } from '../helpers/raw.ts';
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

/** One raw request; the status line's code and what the backend received for it. */
async function probe(target: string, port = gw.http): Promise<{ status: number; text: string; arrived: string[] }> {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    text,
    arrived: backend.arrivals.slice(before).map((a) => a.url),
  };
}

// Normalised to /admin (or below), then refused by the admin route's key-auth: the same decision as /admin.
const READ_AS_ADMIN = ['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin', '//admin', '///admin'];
const MORE_AS_ADMIN = ['/./admin', '/admin/', '/%61dmin', '/%2e/admin', '/public/./../admin', '//admin//secret'];
const REFUSED = [
  '/public/..%2fadmin',
  '/public/%2e%2e%2fadmin',
  '/public/..%252fadmin',
  '/public/%252e%252e/admin',
  '/public%2f..%2fadmin',
  '/%2fadmin',
  '/admin;jsessionid=x',
  '/admin/..;/',
  '/public/..;/admin',
  '/public/.;/admin',
  '/admin%00',
  '/admin%20',
  '/%20admin',
  '/admin%09',
  '/admin%0d%0a',
  '/%5cadmin',
  '/public/..%5cadmin',
  '/public/..\\admin',
  '/%c0%ae%c0%ae/admin',
  '/public/%c0%ae%c0%ae/admin',
  '/%e0%80%ae%e0%80%ae/admin',
  '/admin%',
  '/admin%2',
  '/admin%zz',
];

test('dot segments, escaped dots and doubled slashes are read as /admin and get the same 401 as /admin', async () => {
  for (const target of [...READ_AS_ADMIN, ...MORE_AS_ADMIN, 'http://a/admin', 'http://a//admin']) {
    const r = await probe(target);
    assert.equal(r.status, 401, `${target}: ${r.text}`);
    assert.match(r.text, /"code":"TP_UNAUTHENTICATED"/, target);
    assert.deepEqual(r.arrived, [], target);
  }
});

test('escaped slashes, path parameters, ..; , backslashes, controls and overlong UTF-8 are refused 400 TP_BAD_PATH before the backend', async () => {
  for (const target of REFUSED) {
    const r = await probe(target);
    assert.equal(r.status, 400, `${target}: ${r.text}`);
    assert.match(r.text, /content-type: application\/problem\+json/i, target);
    assert.match(r.text, /"code":"TP_BAD_PATH"/, target);
    assert.match(r.text, /connection: close/i, target);
    assert.deepEqual(r.arrived, [], target);
  }
});

test('a target that is no path (\\admin) is refused 400 before the backend', async () => {
  const r = await probe('\\admin');
  assert.equal(r.status, 400, r.text);
  assert.deepEqual(r.arrived, []);
});

test('the path the router saw is the path forwarded: normalised on the open routes too, byte for byte', async () => {
  const cases: [string, string][] = [
    ['//public//x', '/public/x'],
    ['/public/a/../b', '/public/b'],
    ['/public/%7euser/%41', '/public/~user/A'],
    ['/x/../public/y?q=%2f..', '/public/y?q=%2f..'],
    ['/public/caf%C3%A9', '/public/caf%C3%A9'],
    ['/public/a%20b', '/public/a%20b'],
    ['/public/a%3bb', '/public/a%3bb'],
  ];
  for (const [sent, forwarded] of cases) {
    const r = await probe(sent);
    assert.equal(r.status, 200, `${sent}: ${r.text}`);
    assert.deepEqual(r.arrived, [forwarded], sent);
  }
});

test('case is significant: /ADMIN reaches the open route and the backend sees /ADMIN, never /admin', async () => {
  for (const target of ['/ADMIN', '/Admin', '/aDMIN/secret']) {
    const r = await probe(target);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.arrived, [target]);
  }
  assert.ok(!backend.arrivals.some((a) => a.url.startsWith('/admin')), 'nothing ever reached /admin');
});

test('over HTTP/2 the same paths get the same decisions', async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  try {
    const before = backend.arrivals.length;
    for (const path of ['//admin', '/public/../admin', '/%61dmin']) {
      const r = await h2Request(session, { ':path': path });
      assert.equal(r.status, 401, `${path}: ${r.body}`);
    }
    for (const path of ['/public/..%2fadmin', '/admin;x', '/public/..;/admin', '/admin%00']) {
      const r = await h2Request(session, { ':path': path });
      assert.equal(r.status, 400, `${path}: ${r.body}`);
      assert.equal(JSON.parse(r.body).code, 'TP_BAD_PATH');
    }
    assert.equal(backend.arrivals.length, before);
  } finally {
    session.close();
  }
});

test('with an API key, //admin//secret is forwarded as the /admin/secret the ACL evaluated', async () => {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    gw.http,
    'GET //admin//secret HTTP/1.1\r\nHost: a\r\nx-api-key: admin-key-0123456789\r\nConnection: close\r\n\r\n',
  );
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.deepEqual(
    backend.arrivals.slice(before).map((a) => a.url),
    ['/admin/secret'],
  );
});

test('with mergeSlashes: false and pathParameters: allow, //admin and /admin;x stay as sent: routed and forwarded byte for byte', async () => {
  // Why the defaults are true / reject: with them off, the open catch-all takes these paths, and a slash-merging or
  // Tomcat-style backend behind it would read /admin. The gateway stays consistent, the backend must be too.
  const loose = await startAttackGateway({
    upstream: backend.url,
    limits: 'mergeSlashes: false\npathParameters: allow',
  });
  try {
    for (const target of ['//admin', '/admin;jsessionid=x']) {
      const r = await probe(target, loose.http);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.arrived, [target]);
    }
    // Dot segments with parameters stay refused whatever the policy.
    assert.equal((await probe('/public/..;/admin', loose.http)).status, 400);
  } finally {
    await loose.stop();
  }
});

test('with caseSensitivePaths: false, /ADMIN and every case of it get the same 401 as /admin, and nothing reaches the backend', async () => {
  const folded = await startAttackGateway({ upstream: backend.url, limits: 'caseSensitivePaths: false' });
  try {
    const before = backend.arrivals.length;
    for (const target of [
      '/ADMIN',
      '/Admin',
      '/aDMIN/secret',
      '/%41DMIN',
      '//ADMIN',
      '/PUBLIC/../ADMIN',
      'http://a/ADMIN',
    ]) {
      const r = await probe(target, folded.http);
      assert.equal(r.status, 401, `${target}: ${r.text}`);
    }
    const key = await rawExchange(
      folded.http,
      `GET /ADMIN/x HTTP/1.1\r\nHost: a\r\nX-API-Key: ${ADMIN_KEY}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(key.text, /^HTTP\/1\.1 200 /);
    // The ACL saw the path case-folded; the backend gets it as sent (the same bytes the router read).
    assert.deepEqual(
      backend.arrivals.slice(before).map((a) => a.url),
      ['/ADMIN/x'],
    );
  } finally {
    await folded.stop();
  }
});
