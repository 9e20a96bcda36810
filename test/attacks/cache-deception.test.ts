// C02 (Omer Gil, web cache deception): an authenticated request to a private page dressed as a static file, then
// the same URL without credentials. Turnpike never stores a response to a request with Authorization or a Cookie,
// nor one with Set-Cookie or Cache-Control private/no-store; the deceptive paths that a backend reads as
// `/account` (`;x.css`, `%2fx.css`) are refused 400 TP_BAD_PATH before the cache (limits.pathParameters and
// escapedSlashes), and the cache key is the normalised path the router saw (P01). Not even a response that says
// `public` (or s-maxage, must-revalidate) to a request with Authorization is stored, though RFC 9111 §3.5 would
// allow it: a careless backend marks a user's page public; a route that wants the RFC's rule sets storeAuthorized.
// Turnpike never caches by file extension, so a `.css` suffix alone changes nothing.
import assert from 'node:assert/strict';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  // A backend that ignores the suffix (`/account/...` is the account page) and says whose page it is; it marks
  // nothing private unless the path asks it to (a careless backend: max-age on everything).
  backend = await startRecordingBackend((req, res, a) => {
    const who = a.headers.authorization ?? a.headers.cookie ?? 'anonymous';
    const body = `settings for ${who}`;
    const headers: Record<string, string | number> = {
      'content-type': 'text/css',
      'cache-control': req.url!.includes('public') ? 'public, max-age=60' : 'max-age=60',
      'content-length': Buffer.byteLength(body),
    };
    if (req.url!.includes('set-cookie')) headers['set-cookie'] = 'session=fresh';
    if (req.url!.includes('private')) headers['cache-control'] = 'private, max-age=60';
    if (req.url!.includes('no-store')) headers['cache-control'] = 'no-store';
    res.writeHead(200, headers);
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
    const req = httpRequest({ host: '127.0.0.1', port: gw.http, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, cache: String(res.headers['x-cache'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const CREDENTIALS: OutgoingHttpHeaders[] = [{ authorization: 'Bearer alice' }, { cookie: 'session=alice' }];
const STATIC_LOOKING = [
  '/cache/account/settings/x.css',
  '/cache/account/.css',
  '/cache/account%23.css',
  '/cache/account/x.css?v=1',
];

test('a private answer to a request with credentials is never served to the next, anonymous client', async () => {
  let n = 0;
  for (const credentials of CREDENTIALS) {
    for (const path of STATIC_LOOKING) {
      const url = `${path}${path.includes('?') ? '&' : '?'}n=${n++}`;
      const mine = await get(url, credentials);
      assert.match(mine.body, /alice/, url);
      const before = backend.arrivals.length;
      const anonymous = await get(url);
      assert.equal(anonymous.body, 'settings for anonymous', `${url}: ${anonymous.body}`);
      assert.equal(backend.arrivals.length, before + 1, `${url}: the anonymous request was answered from the cache`);
    }
  }
});

test('responses with Set-Cookie, Cache-Control private or no-store are not stored', async () => {
  for (const kind of ['set-cookie', 'private', 'no-store']) {
    const url = `/cache/account/${kind}/x.css`;
    await get(url);
    const before = backend.arrivals.length;
    const again = await get(url);
    assert.notEqual(again.cache, 'HIT', kind);
    assert.equal(backend.arrivals.length, before + 1, `${kind} was served from the cache`);
  }
});

test('even a response that says public to a request with Authorization is not stored', async () => {
  await get('/cache/account/public/x.css', CREDENTIALS[0]);
  const anonymous = await get('/cache/account/public/x.css');
  assert.notEqual(anonymous.cache, 'HIT');
  assert.equal(anonymous.body, 'settings for anonymous');
  // ...but never one to a request with a Cookie the key does not cover.
  await get('/cache/account/public/y.css', CREDENTIALS[1]);
  assert.equal((await get('/cache/account/public/y.css')).body, 'settings for anonymous');
});

test('the control: an anonymous answer is stored (the cache is on)', async () => {
  await get('/cache/account/public.css');
  assert.equal((await get('/cache/account/public.css')).cache, 'HIT');
});

test('paths a backend reads as /account (;x.css, %2fx.css) are refused 400 before the cache and the backend', async () => {
  for (const path of [
    '/cache/account;x.css',
    '/cache/account%2fx.css',
    '/cache/account%2Fx.css',
    '/cache/account%5cx.css',
  ]) {
    const before = backend.arrivals.length;
    const r = await get(path, CREDENTIALS[0]);
    assert.equal(r.status, 400, path);
    assert.match(r.body, /"code":"TP_BAD_PATH"/);
    assert.equal(backend.arrivals.length, before, path);
  }
});

test('the cache key is the normalised path: //cache/./page and /cache/page share one entry', async () => {
  await get('/cache/key/page');
  const before = backend.arrivals.length;
  for (const path of ['//cache/./key/page', '/cache//key/page', '/cache/x/../key/page', '/cache/%6bey/page'])
    assert.equal((await get(path)).cache, 'HIT', path);
  assert.equal(backend.arrivals.length, before);
});
