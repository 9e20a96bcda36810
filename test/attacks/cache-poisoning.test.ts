// C01 (PortSwigger "practical web cache poisoning"): unkeyed headers the backend reflects. Turnpike takes the
// row's first behaviour: the headers are not passed on as sent. From an untrusted peer X-Forwarded-Host is replaced
// by the gateway's own value (the Host it routed on), X-Forwarded-Scheme, X-Original-URL, X-Rewrite-URL and
// X-HTTP-Method-Override are removed (forwardOverrideHeaders opts a route in), so a clean request never receives
// `evil.example`. A response that varies on Accept-Encoding is stored per encoding (Vary).
import assert from 'node:assert/strict';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

const REFLECTED = [
  'x-forwarded-host',
  'x-forwarded-scheme',
  'x-forwarded-proto',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-host',
  'forwarded',
];

before(async () => {
  // A backend that builds absolute links from whatever headers it gets, and varies on Accept-Encoding.
  backend = await startRecordingBackend((_req, res, a) => {
    const body =
      REFLECTED.map((h) => `${h}=${String(a.headers[h] ?? '')}`).join('\n') +
      `\nae=${a.headers['accept-encoding'] ?? ''}`;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'cache-control': 'public, max-age=60',
      vary: 'Accept-Encoding',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

function get(
  path: string,
  headers: OutgoingHttpHeaders = {},
): Promise<{ status: number; body: string; cache: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: gw.http, path, headers: { host: 'good.example', ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, cache: String(res.headers['x-cache'] ?? '') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const POISON: OutgoingHttpHeaders = {
  'x-forwarded-host': 'evil.example',
  'x-forwarded-scheme': 'http',
  'x-forwarded-proto': 'http',
  'x-original-url': '/evil.example/admin',
  'x-rewrite-url': '/evil.example/admin',
  'x-http-method-override': 'POST',
  forwarded: 'host=evil.example;proto=http',
};

test('a clean request after a poisoned one never receives evil.example', async () => {
  const poisoned = await get('/cache/page?cb=1', POISON);
  assert.equal(poisoned.status, 200);
  const clean = await get('/cache/page?cb=1');
  assert.ok(!clean.body.includes('evil.example'), clean.body);
  assert.ok(!poisoned.body.includes('evil.example'), 'the poison reached the backend');
});

test('the backend never sees the poisoning headers as the client sent them', async () => {
  const before = backend.arrivals.length;
  await get('/cache/page?cb=2', POISON);
  const a = backend.arrivals[before]!;
  assert.equal(a.headers['x-forwarded-host'], 'good.example');
  assert.equal(a.headers['x-forwarded-proto'], 'http');
  for (const h of ['x-forwarded-scheme', 'x-original-url', 'x-rewrite-url', 'x-http-method-override'])
    assert.equal(a.headers[h], undefined, h);
  assert.ok(!String(a.headers.forwarded ?? '').includes('evil.example'), String(a.headers.forwarded));
});

test('each header alone, on a fresh key, cannot poison the entry the next client gets', async () => {
  let n = 10;
  for (const [name, value] of Object.entries(POISON)) {
    const path = `/cache/page?cb=${n++}`;
    await get(path, { [name]: value });
    const clean = await get(path);
    assert.equal(clean.cache, 'HIT', `${name}: the entry was not stored, the test proves nothing`);
    assert.ok(!clean.body.includes('evil.example'), `${name}: ${clean.body}`);
  }
});

test('an odd Accept-Encoding is stored under its own variant (Vary), never served to a plain one', async () => {
  await get('/cache/page?cb=ae', { 'accept-encoding': 'evil.example, gzip;q=0' });
  const plain = await get('/cache/page?cb=ae', { 'accept-encoding': 'gzip' });
  assert.ok(!plain.body.includes('evil.example'), plain.body);
  const none = await get('/cache/page?cb=ae');
  assert.ok(!none.body.includes('evil.example'), none.body);
});
