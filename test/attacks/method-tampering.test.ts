// A04 (verb tampering): a protected route must give every method the decision GET gets. HEAD, OPTIONS and any
// other method on /admin meet its key-auth; `TRACE` is 405 and never forwarded; method-override headers are
// removed unless a route lists them in forwardOverrideHeaders; a lower-case method is no method (400). A method a
// GET-only protected route does not allow is answered 405 with Allow by that route (Kong's and Envoy's choice),
// never passed to the open catch-all route behind it (src/routing/router.ts, precedence 3).
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { ADMIN_KEY, startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({
    upstream: backend.url,
    // A GET-only protected route in front of the open catch-all.
    extra: `  - name: reports
    match: { path: /reports, methods: [GET] }
    upstream: app
    plugins: [{ key-auth: { header: x-api-key } }]
`,
  });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

async function send(method: string, target: string, headers = '') {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    gw.http,
    `${method} ${target} HTTP/1.1\r\nHost: a\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    text,
    arrived: backend.arrivals.slice(before),
  };
}

test('every method on /admin without a key gets the 401 GET gets, and nothing is forwarded', async () => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'DELETE', 'PATCH', 'PROPFIND', 'MKCOL']) {
    const r = await send(method, '/admin/secret');
    assert.equal(r.status, 401, `${method}: ${r.text}`);
    assert.equal(r.arrived.length, 0, method);
  }
});

test('a lower-case or invented-syntax method is refused 400 before routing', async () => {
  for (const method of ['get', 'Get', 'G=T']) {
    const r = await send(method, '/admin/secret');
    assert.equal(r.status, 400, `${method}: ${r.text}`);
    assert.equal(r.arrived.length, 0);
  }
});

test('TRACE is 405 problem+json on every route and never forwarded', async () => {
  for (const target of ['/admin/secret', '/public/x', '/']) {
    const r = await send('TRACE', target, `x-api-key: ${ADMIN_KEY}\r\n`);
    assert.equal(r.status, 405, r.text);
    assert.match(r.text, /"code":"TP_METHOD_NOT_ALLOWED"/);
    assert.equal(r.arrived.length, 0);
  }
});

test('X-HTTP-Method-Override does not change the decision and never reaches the backend', async () => {
  const denied = await send('GET', '/admin/secret', 'X-HTTP-Method-Override: DELETE\r\n');
  assert.equal(denied.status, 401);
  assert.equal(denied.arrived.length, 0);
  const override =
    'X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\n' +
    'X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n';
  for (const target of ['/public/x', '/reports/x']) {
    const r = await send('GET', target, `x-api-key: ${ADMIN_KEY}\r\n${override}`);
    assert.equal(r.status, 200, r.text);
    const names = r.arrived[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const h of ['x-http-method-override', 'x-original-url', 'x-rewrite-url'])
      assert.ok(!names.includes(h), `${h} reached the backend on ${target}`);
  }
});

test('a method a GET-only protected route does not allow is 405 with Allow, never the open catch-all', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    for (const target of ['/reports', '/reports/2026', '/reports/../reports/x', '//reports']) {
      const r = await send(method, target);
      assert.equal(r.status, 405, `${method} ${target}: ${r.text}`);
      assert.match(r.text, /\r\nallow: GET, HEAD\r\n/i);
      assert.match(r.text, /"code":"TP_METHOD_NOT_ALLOWED"/);
      assert.equal(r.arrived.length, 0, `${method} ${target} reached the backend`);
    }
  }
  // With the key too: the route does not take the method, whoever asks.
  const keyed = await send('DELETE', '/reports/2026', `x-api-key: ${ADMIN_KEY}\r\n`);
  assert.equal(keyed.status, 405);
  assert.equal(keyed.arrived.length, 0);
});

test('GET and HEAD on the GET-only route meet its key-auth; with the key GET is forwarded as GET', async () => {
  assert.equal((await send('GET', '/reports/x')).status, 401);
  assert.equal((await send('HEAD', '/reports/x')).status, 401);
  const ok = await send('GET', '/reports/x', `x-api-key: ${ADMIN_KEY}\r\n`);
  assert.equal(ok.status, 200);
  assert.deepEqual(
    ok.arrived.map((a) => `${a.method} ${a.url}`),
    ['GET /reports/x'],
  );
});

test('over HTTP/2 the same methods get the same answers', async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  const status = (method: string, path: string) =>
    new Promise<{ status: number; allow: unknown }>((resolve, reject) => {
      const req = session.request({ ':method': method, ':path': path });
      req.on('response', (h) => resolve({ status: Number(h[':status']), allow: h['allow'] }));
      req.on('error', reject);
      req.resume();
      req.end();
    });
  try {
    const before = backend.arrivals.length;
    assert.deepEqual(await status('DELETE', '/reports/x'), { status: 405, allow: 'GET, HEAD' });
    assert.equal((await status('OPTIONS', '/admin/x')).status, 401);
    assert.equal((await status('TRACE', '/public/x')).status, 405);
    assert.equal(backend.arrivals.length, before);
  } finally {
    session.close();
  }
});
