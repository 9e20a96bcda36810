// The cache never hands one client's private answer to another: an answer to a request with Authorization is never
// stored unless the route sets storeAuthorized (then RFC 9111 3.5: only public, s-maxage or must-revalidate), and
// defaultTtl never overrides Set-Cookie, private, no-store or no-cache; requests with cookies bypass the cache unless the
// key or ignoreCookies covers every cookie; a path dressed up as a static file changes none of it. Verdicts are
// taken on how many requests reached the backend and on what the other client got.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Gateway } from '../../src/index.ts';
import { ManualClock } from '../helpers/clock.ts';
import { pluginConfigProblems } from '../helpers/config.ts';
import { startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

// Raw paths (`;`, `%2f`) go out as written: node's request() does not normalise them.
function get(port: number, path: string, headers: OutgoingHttpHeaders = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const ALICE = { authorization: 'Bearer alice-token' };
const ALICE_COOKIE = { cookie: 'session=alice-session' };

let backend: Backend;
let answered = 0;
let failing = false;

/** Caching headers by the path's last word; the body says who asked (credentials the backend got). */
const RESPONSE_CC: Record<string, Record<string, string>> = {
  public: { 'cache-control': 'public' },
  's-maxage': { 'cache-control': 's-maxage=60' },
  'must-revalidate': { 'cache-control': 'must-revalidate' },
  private: { 'cache-control': 'private' },
  'no-store': { 'cache-control': 'no-store' },
  'no-cache': { 'cache-control': 'no-cache' },
};

before(async () => {
  backend = await startBackend((req, res) => {
    answered++;
    const url = req.url ?? '/';
    const last = url.split('?')[0]!.split('/').pop()!;
    const who = req.headers.authorization ?? req.headers.cookie ?? 'anonymous';
    if (url.startsWith('/rv/')) {
      // Revalidated entries: a 304 that states no Cache-Control of its own, and a failure when asked to fail.
      if (failing) return res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
      if (req.headers['if-none-match'] === '"v1"') return res.writeHead(304, { etag: '"v1"' }).end();
    }
    const headers: Record<string, string> = { 'content-type': 'text/plain', ...RESPONSE_CC[last] };
    if (url.startsWith('/rv/')) headers.etag = '"v1"';
    if (last === 'set-cookie' || url.startsWith('/sc/')) headers['set-cookie'] = `session=issued-${answered}`;
    res.writeHead(200, headers).end(`${url} #${answered} for ${who}`);
  });
});

after(async () => {
  await backend.close();
});

/** Requests that reached the backend while `run` ran. */
async function reaching<T>(run: () => Promise<T>): Promise<{ result: T; reached: number }> {
  const start = answered;
  const result = await run();
  return { result, reached: answered - start };
}

/** The attack: a client with credentials asks first, an anonymous one next. */
function privateThenAnonymous(port: number, path: string, credentials: OutgoingHttpHeaders) {
  return reaching(async () => ({ first: await get(port, path, credentials), anonymous: await get(port, path) }));
}

function assertOwnAnswer(anonymous: Got, reached: number, what: string): void {
  assert.equal(anonymous.status, 200, what);
  assert.notEqual(anonymous.headers['x-cache'], 'HIT', what);
  assert.match(anonymous.body, / for anonymous$/, `${what}: the anonymous client got ${anonymous.body}`);
  assert.equal(reached, 2, `${what}: both requests reach the backend`);
}

describe('with defaultTtl and the default cookie policy', () => {
  let gw: Gateway;
  let port: number;
  /** The gateway's time: an entry goes stale when a test moves it past its defaultTtl. */
  const clock = new ManualClock();
  // `;` and `%2f` are refused 400 by default (limits.pathParameters, escapedSlashes): allowed here so the deceptive
  // suffixes below reach the cache and its privacy rules are what is tested.
  before(async () => {
    gw = await startGatewayYaml(
      `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0, limits: { escapedSlashes: keep, pathParameters: allow } }
upstreams:
  b: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: revalidated
    match: { path: /rv }
    upstream: b
    plugins: [{ cache: { defaultTtl: 1s, staleIfError: 60s, storeAuthorized: true } }]
  - name: authorized-stored
    match: { path: /shared }
    upstream: b
    plugins: [{ cache: { defaultTtl: 60s, storeAuthorized: true } }]
  - name: set-cookie-stored
    match: { path: /sc }
    upstream: b
    plugins: [{ cache: { defaultTtl: 60s, storeSetCookie: true } }]
  - name: account
    match: { path: / }
    upstream: b
    plugins: [{ cache: { defaultTtl: 60s } }]
`,
      { clock },
    );
    port = gw.port();
  });
  after(async () => {
    await gw.stop();
  });

  describe('defaultTtl never overrides the RFC or the response', () => {
    test('a response to a request with Authorization is never stored by defaultTtl (served to an anonymous client)', async () => {
      const { result, reached } = await privateThenAnonymous(port, '/account/x', ALICE);
      assert.match(result.first.body, / for Bearer alice-token$/);
      assertOwnAnswer(result.anonymous, reached, '/account/x');
      // defaultTtl still stores the anonymous answer.
      assert.equal((await get(port, '/account/x')).headers['x-cache'], 'HIT');
    });

    test('storeSetCookie with defaultTtl never stores a response to a request with Authorization (served to an anonymous client)', async () => {
      const { result, reached } = await privateThenAnonymous(port, '/sc/x', ALICE);
      assertOwnAnswer(result.anonymous, reached, '/sc/x');
      assert.notEqual(result.anonymous.headers['set-cookie']?.[0], result.first.headers['set-cookie']?.[0]);
    });

    test('by default even public, s-maxage or must-revalidate never stores an answer to a request with Authorization', async () => {
      for (const path of ['/account/public', '/account/s-maxage', '/account/must-revalidate']) {
        const { result, reached } = await privateThenAnonymous(port, path, ALICE);
        assertOwnAnswer(result.anonymous, reached, path);
      }
    });

    test('with storeAuthorized and public, s-maxage or must-revalidate in the response, a request with Authorization is stored (RFC 9111 3.5)', async () => {
      for (const path of ['/shared/public', '/shared/s-maxage', '/shared/must-revalidate']) {
        const { result, reached } = await privateThenAnonymous(port, path, ALICE);
        assert.equal(result.first.headers['x-cache'], 'MISS', path);
        assert.equal(result.anonymous.headers['x-cache'], 'HIT', path);
        assert.match(result.anonymous.body, / for Bearer alice-token$/, path);
        assert.equal(reached, 1, path);
      }
    });

    test('a response with Set-Cookie is never stored by defaultTtl (another client never gets that cookie)', async () => {
      const { result, reached } = await reaching(async () => [
        await get(port, '/account/set-cookie'),
        await get(port, '/account/set-cookie'),
      ]);
      const [first, second] = result;
      assert.equal(reached, 2);
      assert.notEqual(second!.headers['x-cache'], 'HIT');
      assert.notEqual(second!.headers['set-cookie']?.[0], first!.headers['set-cookie']?.[0]);
    });

    test('a private, no-store or no-cache response is never stored by defaultTtl (the next client gets its own answer)', async () => {
      for (const path of ['/account/private', '/account/no-store', '/account/no-cache']) {
        const { result, reached } = await reaching(async () => [await get(port, path), await get(port, path)]);
        assert.equal(reached, 2, path);
        assert.notEqual(result[1]!.headers['x-cache'], 'HIT', path);
        assert.notEqual(result[1]!.body, result[0]!.body, path);
      }
    });
  });

  describe('a 304 that states no Cache-Control keeps the stored directives (RFC 9111 4.3.4)', () => {
    test('with storeAuthorized, a revalidation by a request with Authorization keeps a public entry shared (defaultTtl does not replace public)', async () => {
      const { result, reached } = await reaching(async () => ({
        first: await get(port, '/rv/public', ALICE),
        revalidated: await get(port, '/rv/public', { ...ALICE, 'cache-control': 'no-cache' }),
        anonymous: await get(port, '/rv/public'),
      }));
      assert.equal(result.revalidated.headers['x-cache'], 'REVALIDATED');
      assert.equal(result.anonymous.headers['x-cache'], 'HIT');
      assert.equal(reached, 2);
    });

    test('a revalidated must-revalidate entry is never served stale when the upstream fails (defaultTtl does not replace must-revalidate)', async () => {
      await get(port, '/rv/must-revalidate');
      assert.equal(
        (await get(port, '/rv/must-revalidate', { 'cache-control': 'no-cache' })).headers['x-cache'],
        'REVALIDATED',
      );
      clock.advance(1100); // past defaultTtl 1s, within staleIfError 60s
      failing = true;
      try {
        const r = await get(port, '/rv/must-revalidate');
        assert.equal(r.status, 500);
        assert.notEqual(r.headers['x-cache'], 'STALE');
      } finally {
        failing = false;
      }
    });
  });

  describe('requests with cookies bypass the cache by default', () => {
    test('a response to a request with a Cookie is not stored (served to an anonymous client)', async () => {
      const { result, reached } = await privateThenAnonymous(port, '/account/c', ALICE_COOKIE);
      assert.equal(result.first.headers['x-cache'], 'BYPASS');
      assert.match(result.first.body, / for session=alice-session$/);
      assertOwnAnswer(result.anonymous, reached, '/account/c');
    });

    test('a request with a Cookie never gets the anonymous copy (a logged-in user gets their own answer)', async () => {
      await get(port, '/account/d');
      const { result, reached } = await reaching(() => get(port, '/account/d', ALICE_COOKIE));
      assert.equal(reached, 1);
      assert.equal(result.headers['x-cache'], 'BYPASS');
      assert.match(result.body, / for session=alice-session$/);
      assert.equal((await get(port, '/account/d')).headers['x-cache'], 'HIT', 'the anonymous copy stays');
    });
  });

  describe('deceptive suffixes (/account/x.css, /account;x.css, /account%2fx.css)', () => {
    const PATHS = ['/account/x.css', '/account;x.css', '/account%2fx.css'];

    test('a response to a request with Authorization on a path dressed as a static file is not served to an anonymous client', async () => {
      for (const path of PATHS) {
        const { result, reached } = await privateThenAnonymous(port, `${path}?a`, ALICE);
        assert.match(result.first.body, / for Bearer alice-token$/, path);
        assertOwnAnswer(result.anonymous, reached, path);
      }
    });

    test('a response to a request with a Cookie on a path dressed as a static file is not served to an anonymous client', async () => {
      for (const path of PATHS) {
        const { result, reached } = await privateThenAnonymous(port, `${path}?c`, ALICE_COOKIE);
        assert.equal(result.first.headers['x-cache'], 'BYPASS', path);
        assertOwnAnswer(result.anonymous, reached, path);
      }
    });
  });
});

describe('cookie:NAME in the key and ignoreCookies', () => {
  let gw: Gateway;
  let port: number;
  before(async () => {
    gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  b: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: site
    match: { path: / }
    upstream: b
    plugins:
      - cache: { defaultTtl: 60s, key: [host, path, query, "cookie:session"], ignoreCookies: ["_ga*", theme] }
`);
    port = gw.port();
  });
  after(async () => {
    await gw.stop();
  });

  test('with cookie:session in the key each session has its own entries, and an anonymous client never gets one of them', async () => {
    const { result, reached } = await reaching(async () => ({
      alice: await get(port, '/home', { cookie: 'session=alice' }),
      bob: await get(port, '/home', { cookie: 'session=bob' }),
      anonymous: await get(port, '/home'),
      emptySession: await get(port, '/home', { cookie: 'session=' }),
      aliceAgain: await get(port, '/home', { cookie: 'theme=dark; session=alice; _ga=GA1.2.3' }),
      anonymousAgain: await get(port, '/home'),
    }));
    assert.equal(reached, 4);
    assert.match(result.bob.body, / for session=bob$/);
    assert.match(result.anonymous.body, / for anonymous$/);
    assert.match(result.emptySession.body, / for session=$/, 'an empty session is not the anonymous variant');
    assert.equal(result.aliceAgain.headers['x-cache'], 'HIT');
    assert.match(result.aliceAgain.body, / for session=alice$/);
    assert.equal(result.anonymousAgain.headers['x-cache'], 'HIT');
    assert.match(result.anonymousAgain.body, / for anonymous$/);
  });

  test('cookies named in ignoreCookies (globs too) share the anonymous copy; any other cookie is BYPASS', async () => {
    const { result, reached } = await reaching(async () => ({
      tracked: await get(port, '/news', { cookie: '_ga=GA1.2.3; _gat_x=1; theme=dark' }),
      anonymous: await get(port, '/news'),
      other: await get(port, '/news', { cookie: '_ga=GA1.2.3; token=t' }),
    }));
    assert.equal(reached, 2);
    assert.equal(result.anonymous.headers['x-cache'], 'HIT');
    assert.equal(result.other.headers['x-cache'], 'BYPASS');
    assert.match(result.other.body, / for _ga=GA1\.2\.3; token=t$/);
  });

  test('a keyed cookie sent twice, a name differing in case or spacing, or a pair without a name is BYPASS (the upstream may read it otherwise)', async () => {
    await get(port, '/shop', { cookie: 'session=alice' });
    for (const cookie of [
      'session=alice; session=bob',
      'session=bob; session=alice',
      'Session=bob',
      'session =bob',
      'bob',
    ]) {
      const { result, reached } = await reaching(() => get(port, '/shop', { cookie }));
      assert.equal(result.headers['x-cache'], 'BYPASS', cookie);
      assert.equal(reached, 1, cookie);
    }
    const anonymous = await get(port, '/shop');
    assert.equal(anonymous.headers['x-cache'], 'MISS');
    assert.match(anonymous.body, / for anonymous$/);
  });

  test('cookie:NAME and ignoreCookies take cookie names only', () => {
    assert.deepEqual(
      pluginConfigProblems('      - cache: { key: [path, "cookie:session"], ignoreCookies: ["_ga*", "*"] }'),
      [],
    );
    assert.match(pluginConfigProblems('      - cache: { key: [path, "cookie:a;b"] }').join('\n'), /cookie:NAME/);
    assert.match(pluginConfigProblems('      - cache: { ignoreCookies: ["a b"] }').join('\n'), /cookie name/);
  });
});
