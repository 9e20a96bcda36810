// The response cache (memory store) through the gateway: what is stored and for how long (RFC 9111), variants,
// revalidation, stale serving, request collapsing, size bounds, purging, and its work with compress.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Gateway } from '../../src/index.ts';
import { ManualClock } from '../helpers/clock.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(port: number, path: string, headers: OutgoingHttpHeaders = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const JSON_BODY = JSON.stringify({
  items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, price: i * 3, tags: ['a', 'b'] })),
});
const LAST_MODIFIED = new Date(Date.now() - 3_600_000).toUTCString();

/** Requests the backend got, per path (query included). */
const seen = new Map<string, number>();
const count = (path: string): number => seen.get(path) ?? 0;
let failing = false;
let releaseStream: (() => void) | null = null;
let releaseRefresh: (() => void) | null = null;

/** The gateway's time: entries go stale when a test moves it past their max-age, not by waiting. */
const clock = new ManualClock();
/** Past `max-age=1`. */
const STALE_MS = 1100;

let backend: Backend;
let flaky: Backend;
let gw: Gateway;
let port: number;

function handler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  const url = req.url ?? '/';
  seen.set(url, count(url) + 1);
  const n = count(url);
  const path = url.split('?')[0]!;
  const send = (headers: Record<string, string | string[] | number>, body: string | Buffer = `${path} #${n}`) =>
    res.writeHead(200, { 'content-type': 'text/plain', ...headers }).end(body);
  if (failing && path.startsWith('/c/sie')) return res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
  if (path === '/c/short' || path === '/c/swr' || path === '/c/sie' || path === '/f/sie') {
    if (req.headers['if-none-match'] === '"v1"')
      return res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=1' }).end();
    const extra =
      path === '/c/swr' ? ', stale-while-revalidate=30' : path.endsWith('/sie') ? ', stale-if-error=30' : '';
    // The refresh of /c/swr is held until the test lets it go, so the clients asking meanwhile all get the stale copy.
    if (path === '/c/swr' && n > 1) {
      releaseRefresh = () => {
        releaseRefresh = null;
        send({ 'cache-control': `max-age=1${extra}` });
      };
      return;
    }
    return send({ 'cache-control': `max-age=1${extra}`, ...(path === '/c/short' ? { etag: '"v1"' } : {}) });
  }
  if (path === '/c/lm') {
    if (req.headers['if-modified-since'] === LAST_MODIFIED)
      return res.writeHead(304, { 'cache-control': 'max-age=1' }).end();
    return send({ 'cache-control': 'max-age=1', 'last-modified': LAST_MODIFIED });
  }
  if (path === '/c/vary') {
    const lang = String(req.headers['accept-language'] ?? 'none');
    return send({ 'cache-control': 'max-age=60', vary: 'Accept-Language' }, `lang=${lang} #${n}`);
  }
  if (path === '/c/slow-private') {
    // Headers at once, the body half a second later.
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private' });
    res.write('part ');
    setTimeout(() => res.end('end'), 500);
    return;
  }
  if (path === '/c/private') return send({ 'cache-control': 'private, max-age=60' });
  if (path === '/c/no-store') return send({ 'cache-control': 'no-store' });
  if (path === '/c/no-freshness') return send({});
  if (path === '/c/expires') return send({ expires: new Date(Date.now() + 60_000).toUTCString() });
  if (path === '/c/auth') return send({ 'cache-control': 'max-age=60' });
  if (path === '/c/auth-public' || path === '/c/shared/auth-public')
    return send({ 'cache-control': 'public, max-age=60' });
  if (path === '/c/auth-s-maxage' || path === '/c/shared/auth-s-maxage')
    return send({ 'cache-control': 's-maxage=60' });
  if (path === '/c/cookie') return send({ 'cache-control': 'max-age=60', 'set-cookie': 'session=abc' });
  if (path === '/c/smaxage-zero') return send({ 'cache-control': 'max-age=60, s-maxage=0' });
  if (path === '/c/slow') {
    setTimeout(() => send({ 'cache-control': 'max-age=60' }), 200);
    return;
  }
  if (path === '/c/json') return send({ 'cache-control': 'max-age=60', 'content-type': 'application/json' }, JSON_BODY);
  if (path === '/c/big')
    return send(
      { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' },
      Buffer.alloc(2 * 1024 * 1024, n),
    );
  if (path === '/c/stream') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' });
    res.write(Buffer.alloc(1000, 1));
    releaseStream = () => res.end(Buffer.alloc(1000, 2));
    return;
  }
  if (path === '/l/slow') {
    setTimeout(() => send({ 'cache-control': 'max-age=60' }), 1000);
    return;
  }
  if (path.startsWith('/x/')) {
    if (failing) return res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
    return send({ 'cache-control': 'max-age=1' });
  }
  if (path === '/k/mine') {
    return send(
      { 'cache-control': 'max-age=60', vary: 'X-Consumer-Name' },
      `for ${String(req.headers['x-consumer-name'])}`,
    );
  }
  if (path.startsWith('/s/'))
    return send(
      { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' },
      Buffer.alloc(16 * 1024, 7),
    );
  if (path.startsWith('/d/')) return send({});
  return send({ 'cache-control': 'max-age=60', etag: `"${path}"` });
}

before(async () => {
  backend = await startBackend(handler);
  flaky = await startBackend(handler);
  gw = await startGatewayYaml(
    `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: [127.0.0.1/32] }]
upstreams:
  b: { targets: [{ url: "${backend.url}" }] }
  catalog: { targets: [{ url: "${backend.url}" }] }
  flaky: { targets: [{ url: "${flaky.url}" }] }
  breaker:
    targets: [{ url: "${backend.url}" }]
    circuitBreaker: { minimumRequests: 2, failureRatio: 0.5, openFor: 30s }
consumers:
  - { name: ops, credentials: { apiKeys: [ops-key-0123456789abcdef] } }
  - { name: visitor, credentials: { apiKeys: [visitor-key-0123456789abc] } }
routes:
  - name: catalog
    match: { path: /catalog }
    upstream: catalog
    plugins:
      - cache: { store: memory, maxSize: 256mb, maxObjectSize: 1mb, purge: { allow: [127.0.0.1/32] } }
      - compress: { minSize: 1kb }
  - name: shared-authorized
    match: { path: /c/shared }
    upstream: b
    plugins: [{ cache: { maxObjectSize: 1mb, storeAuthorized: true } }]
  - name: cached
    match: { path: /c }
    upstream: b
    plugins:
      - cache: { maxObjectSize: 1mb, purge: { allow: [127.0.0.1/32] } }
      - compress: { minSize: 1kb }
  - name: small
    match: { path: /s }
    upstream: b
    plugins: [{ cache: { maxSize: 64kb } }]
  - name: defaults
    match: { path: /d }
    upstream: b
    plugins: [{ cache: { defaultTtl: 60s, statusHeader: X-Cache-Status } }]
  - name: flaky
    match: { path: /f }
    upstream: flaky
    plugins: [{ cache: {} }]
  - name: locked
    match: { path: /l }
    upstream: b
    plugins: [{ cache: { lockTimeout: 200ms } }]
  - name: guarded-upstream
    match: { path: /x }
    upstream: breaker
    plugins: [{ cache: { staleIfError: 60s } }]
  - name: keyed
    match: { path: /k }
    upstream: b
    plugins:
      - key-auth: {}
      - cache: { purge: { consumers: [ops] } }
`,
    { clock },
  );
  port = gw.port();
});

after(async () => {
  releaseStream?.();
  releaseRefresh?.();
  await gw.stop();
  await backend.close();
  await flaky.close();
});

describe('what is stored', () => {
  test('a scripted sequence over 5 URLs is served 90 % from the cache: the backend sees each URL once', async (t) => {
    const statuses: string[] = [];
    for (let round = 0; round < 10; round++) {
      for (let u = 0; u < 5; u++) {
        const r = await get(port, `/c/seq/${u}`);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), `/c/seq/${u} #1`);
        statuses.push(String(r.headers['x-cache']));
      }
    }
    const hits = statuses.filter((s) => s === 'HIT').length;
    const backendRequests = [0, 1, 2, 3, 4].reduce((n, u) => n + count(`/c/seq/${u}`), 0);
    t.diagnostic(`50 requests: ${hits} hits (${((hits / 50) * 100).toFixed(0)} %), backend saw ${backendRequests}`);
    assert.equal(backendRequests, 5);
    assert.equal(hits, 45);
    assert.deepEqual(statuses.slice(0, 5), ['MISS', 'MISS', 'MISS', 'MISS', 'MISS']);
  });

  test('a hit carries Age and the stored headers', async () => {
    await get(port, '/c/age');
    clock.advance(1500);
    const r = await get(port, '/c/age');
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.headers.age, '1', 'whole seconds since it was stored');
    assert.equal(r.headers.etag, '"/c/age"');
  });

  test('private, no-store and Set-Cookie responses are not stored', async () => {
    for (const path of ['/c/private', '/c/no-store', '/c/cookie']) {
      const first = await get(port, path);
      const second = await get(port, path);
      assert.equal(second.headers['x-cache'], 'MISS', path);
      assert.equal(second.body.toString(), `${path} #2`, path);
      assert.equal(first.headers['x-cache'], 'MISS');
    }
    assert.equal((await get(port, '/c/cookie')).headers['set-cookie']?.[0], 'session=abc');
  });

  test('s-maxage wins over max-age for a shared cache, Expires gives freshness, and no freshness at all means no storing', async () => {
    await get(port, '/c/smaxage-zero');
    assert.equal((await get(port, '/c/smaxage-zero')).body.toString(), '/c/smaxage-zero #2');
    await get(port, '/c/expires');
    assert.equal((await get(port, '/c/expires')).headers['x-cache'], 'HIT');
    await get(port, '/c/no-freshness');
    assert.equal((await get(port, '/c/no-freshness')).body.toString(), '/c/no-freshness #2');
  });

  test('defaultTtl stores responses that state no freshness; the status header name is configurable', async () => {
    const first = await get(port, '/d/a');
    const second = await get(port, '/d/a');
    assert.equal(first.headers['x-cache-status'], 'MISS');
    assert.equal(second.headers['x-cache-status'], 'HIT');
    assert.equal(second.headers['x-cache'], undefined);
    assert.equal(count('/d/a'), 1);
  });

  test('an answer to a request with Authorization is not stored, even public or s-maxage; with storeAuthorized those two are (RFC 9111 3.5)', async () => {
    const auth = { authorization: 'Bearer abc' };
    for (const path of ['/c/auth', '/c/auth-public', '/c/auth-s-maxage']) {
      await get(port, path, auth);
      assert.notEqual((await get(port, path, auth)).headers['x-cache'], 'HIT', path);
      assert.equal(count(path), 2, path);
    }
    for (const path of ['/c/shared/auth-public', '/c/shared/auth-s-maxage']) {
      await get(port, path, auth);
      assert.equal((await get(port, path, auth)).headers['x-cache'], 'HIT', path);
    }
  });

  test("Vary: each Accept-Language gets its own stored variant, never another one's", async () => {
    const en = await get(port, '/c/vary', { 'accept-language': 'en' });
    const fr = await get(port, '/c/vary', { 'accept-language': 'fr' });
    const en2 = await get(port, '/c/vary', { 'accept-language': 'en' });
    const fr2 = await get(port, '/c/vary', { 'accept-language': 'fr' });
    const none = await get(port, '/c/vary');
    assert.equal(en.body.toString(), 'lang=en #1');
    assert.equal(fr.body.toString(), 'lang=fr #2');
    assert.equal(en2.body.toString(), 'lang=en #1');
    assert.equal(en2.headers['x-cache'], 'HIT');
    assert.equal(fr2.body.toString(), 'lang=fr #2');
    assert.equal(fr2.headers['x-cache'], 'HIT');
    assert.equal(none.body.toString(), 'lang=none #3');
    assert.equal(count('/c/vary'), 3);
  });

  test("Vary on a header the gateway sets upstream (the consumer name) keys variants by its value, not the client's copy", async () => {
    const ops = { 'x-api-key': 'ops-key-0123456789abcdef' };
    const visitor = { 'x-api-key': 'visitor-key-0123456789abc' };
    assert.equal((await get(port, '/k/mine', ops)).body.toString(), 'for ops');
    const v = await get(port, '/k/mine', visitor);
    assert.equal(v.body.toString(), 'for visitor', "another consumer never gets the first one's variant");
    assert.equal(v.headers['x-cache'], 'MISS');
    const spoofed = await get(port, '/k/mine', { ...ops, 'x-consumer-name': 'visitor' });
    assert.equal(spoofed.headers['x-cache'], 'HIT');
    assert.equal(spoofed.body.toString(), 'for ops', "the client's own X-Consumer-Name selects nothing");
    assert.equal((await get(port, '/k/mine', visitor)).body.toString(), 'for visitor');
  });

  test('on a route with authentication each consumer has its own entries by default (as Kong keys by consumer)', async () => {
    const ops = { 'x-api-key': 'ops-key-0123456789abcdef' };
    const visitor = { 'x-api-key': 'visitor-key-0123456789abc' };
    assert.equal((await get(port, '/k/per-consumer', visitor)).headers['x-cache'], 'MISS');
    assert.equal((await get(port, '/k/per-consumer', visitor)).headers['x-cache'], 'HIT');
    assert.equal((await get(port, '/k/per-consumer', ops)).headers['x-cache'], 'MISS');
    assert.equal((await get(port, '/k/per-consumer', ops)).headers['x-cache'], 'HIT');
    assert.equal(count('/k/per-consumer'), 2);
  });

  test('HEAD is answered from a stored GET, and POST passes by (BYPASS) and invalidates the URL', async () => {
    await get(port, '/c/head');
    const head = await get(port, '/c/head', {}, 'HEAD');
    assert.equal(head.headers['x-cache'], 'HIT');
    assert.equal(head.headers['content-length'], String('/c/head #1'.length));
    assert.equal(head.body.length, 0);
    const post = await get(port, '/c/head', {}, 'POST');
    assert.equal(post.headers['x-cache'], 'BYPASS');
    const after = await get(port, '/c/head');
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body.toString(), '/c/head #3');
  });

  test('only-if-cached: a stored response answers, anything else is 504 without a request upstream', async () => {
    await get(port, '/c/oic');
    const hit = await get(port, '/c/oic', { 'cache-control': 'only-if-cached' });
    assert.equal(hit.headers['x-cache'], 'HIT');
    const none = await get(port, '/c/oic-never', { 'cache-control': 'only-if-cached' });
    assert.equal(none.status, 504);
    assert.equal(JSON.parse(none.body.toString()).code, 'TP_NOT_CACHED');
    assert.equal(count('/c/oic-never'), 0);
  });

  test('a request saying Cache-Control: no-store bypasses the cache; no-cache revalidates', async () => {
    await get(port, '/c/rcc');
    assert.equal((await get(port, '/c/rcc', { 'cache-control': 'no-store' })).headers['x-cache'], 'BYPASS');
    const revalidated = await get(port, '/c/rcc', { 'cache-control': 'no-cache' });
    assert.notEqual(revalidated.headers['x-cache'], 'HIT');
    assert.equal(count('/c/rcc'), 3);
  });
});

describe('revalidation', () => {
  test('a stale entry is revalidated with If-None-Match; a 304 refreshes it and the client gets the stored body', async () => {
    const first = await get(port, '/c/short');
    clock.advance(STALE_MS);
    const second = await get(port, '/c/short');
    assert.equal(second.headers['x-cache'], 'REVALIDATED');
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), first.body.toString());
    const sent = backend.requests.filter((r) => r.url === '/c/short');
    assert.equal(sent.length, 2);
    assert.equal(sent[1]!.headers['if-none-match'], '"v1"');
    assert.equal((await get(port, '/c/short')).headers['x-cache'], 'HIT'); // fresh again after the 304
  });

  test('If-Modified-Since revalidates an entry that has only Last-Modified', async () => {
    await get(port, '/c/lm');
    clock.advance(STALE_MS);
    const r = await get(port, '/c/lm');
    assert.equal(r.headers['x-cache'], 'REVALIDATED');
    assert.equal(r.body.toString(), '/c/lm #1');
    assert.equal(backend.requests.filter((q) => q.url === '/c/lm')[1]!.headers['if-modified-since'], LAST_MODIFIED);
  });

  test('a client conditional request gets 304 from the cache without reaching the backend', async () => {
    await get(port, '/c/cond');
    const before = count('/c/cond');
    const r = await get(port, '/c/cond', { 'if-none-match': 'W/"x", "/c/cond"' });
    assert.equal(r.status, 304);
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.headers.etag, '"/c/cond"');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(count('/c/cond'), before);
    const other = await get(port, '/c/cond', { 'if-none-match': '"other"' });
    assert.equal(other.status, 200);
  });
});

describe('stale responses', () => {
  test('stale-while-revalidate: the stale copy is served at once while exactly one background request refreshes it', async () => {
    await get(port, '/c/swr');
    clock.advance(STALE_MS);
    const stale = await Promise.all(Array.from({ length: 10 }, () => get(port, '/c/swr')));
    for (const r of stale) {
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body.toString(), '/c/swr #1');
    }
    const release = await until(() => releaseRefresh, 'the background refresh to reach the backend', 1000);
    release();
    // Asking until the refresh has landed: meanwhile each answer is stale and starts no other refresh.
    await until(async () => (await get(port, '/c/swr')).headers['x-cache'] === 'HIT', 'the refreshed entry');
    assert.equal(count('/c/swr'), 2, 'one background request for ten stale answers');
    const fresh = await get(port, '/c/swr');
    assert.equal(fresh.headers['x-cache'], 'HIT');
    assert.equal(fresh.body.toString(), '/c/swr #2');
  });

  test('stale-if-error: a 500 from the backend is replaced by the stale copy within the window', async () => {
    await get(port, '/c/sie');
    clock.advance(STALE_MS);
    failing = true;
    try {
      const r = await get(port, '/c/sie');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body.toString(), '/c/sie #1');
    } finally {
      failing = false;
    }
  });

  test('stale-if-error from the config: the stale copy answers while the circuit breaker is open, without a request upstream', async () => {
    await get(port, '/x/item');
    clock.advance(STALE_MS);
    failing = true;
    try {
      assert.equal((await get(port, '/x/other')).status, 500);
      // Failures until the breaker opens (minimumRequests 2, failureRatio 0.5): then it answers 503 itself.
      let open = 0;
      for (let i = 0; i < 5 && open !== 503; i++) open = (await get(port, '/x/never')).status;
      assert.equal(open, 503, 'the breaker is open');
      const r = await get(port, '/x/item');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body.toString(), '/x/item #1');
      assert.equal(count('/x/item'), 1);
    } finally {
      failing = false;
    }
  });

  test('stale-if-error: an unreachable backend is replaced by the stale copy', async () => {
    await get(port, '/f/sie');
    clock.advance(STALE_MS);
    await flaky.close();
    const r = await get(port, '/f/sie');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-cache'], 'STALE');
    assert.equal(r.body.toString(), '/f/sie #1');
    const never = await get(port, '/f/never-stored');
    assert.equal(never.status, 502);
  });
});

describe('collapsing and bounds', () => {
  test('100 concurrent requests for a cold key send exactly one request to the backend', async (t) => {
    const started = performance.now();
    const all = await Promise.all(Array.from({ length: 100 }, () => get(port, '/c/slow')));
    t.diagnostic(
      `100 clients answered in ${(performance.now() - started).toFixed(0)} ms; backend requests: ${count('/c/slow')}`,
    );
    assert.equal(count('/c/slow'), 1);
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '/c/slow #1');
    }
    assert.equal(all.filter((r) => r.headers['x-cache'] === 'MISS').length, 1);
  });

  test('requests waiting for a slow fill give up after lockTimeout and go upstream themselves', async () => {
    const started = performance.now();
    const all = await Promise.all(Array.from({ length: 4 }, () => get(port, '/l/slow')));
    const elapsed = performance.now() - started;
    assert.ok(all.every((r) => r.status === 200));
    assert.equal(count('/l/slow'), 4, 'the three waiters went upstream after 200 ms');
    // 200 ms of waiting + 1 s upstream, not 1 s + 1 s (waiting for the fill, then a fill of their own).
    assert.ok(elapsed < 1900, `${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed >= 1150, `${elapsed.toFixed(0)} ms`);
  });

  test('an object over maxObjectSize passes through whole and is not stored', async () => {
    const first = await get(port, '/c/big');
    assert.equal(first.body.length, 2 * 1024 * 1024);
    const second = await get(port, '/c/big');
    assert.equal(second.body.length, 2 * 1024 * 1024);
    assert.equal(second.headers['x-cache'], 'MISS');
    assert.equal(count('/c/big'), 2);
  });

  test('a cacheable response streams to the client while it is stored', async () => {
    const firstChunk = await new Promise<{ bytes: number; rest: Promise<Buffer> }>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: '/c/stream' }, (res) => {
        const chunks: Buffer[] = [];
        let resolved = false;
        const rest = new Promise<Buffer>((done) => res.on('end', () => done(Buffer.concat(chunks))));
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (!resolved) {
            resolved = true;
            resolve({ bytes: c.length, rest });
          }
        });
      })
        .on('error', reject)
        .end();
    });
    // The client holds the first bytes while the backend has not finished the body.
    assert.ok(firstChunk.bytes > 0);
    releaseStream!();
    const whole = await firstChunk.rest;
    assert.equal(whole.length, 2000);
    const hit = await get(port, '/c/stream');
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.deepEqual(hit.body, whole);
  });

  test('the memory store is bounded by bytes: the least recently used entries go first', async () => {
    // 16 KiB bodies in a 64 KiB store: at most three fit.
    for (let i = 0; i < 6; i++) await get(port, `/s/${i}`);
    assert.equal((await get(port, '/s/5')).headers['x-cache'], 'HIT');
    assert.equal((await get(port, '/s/0')).headers['x-cache'], 'MISS');
  });
});

describe('ranges and encodings', () => {
  test('a single byte range is answered from a stored body; past the end is 416; a stale If-Range gets the whole body', async () => {
    const whole = await get(port, '/c/range');
    const text = whole.body.toString();
    const part = await get(port, '/c/range', { range: 'bytes=2-5' });
    assert.equal(part.status, 206);
    assert.equal(part.body.toString(), text.slice(2, 6));
    assert.equal(part.headers['content-range'], `bytes 2-5/${text.length}`);
    const suffix = await get(port, '/c/range', { range: 'bytes=-3' });
    assert.equal(suffix.body.toString(), text.slice(-3));
    const past = await get(port, '/c/range', { range: `bytes=${text.length}-` });
    assertProblem(past, 416, 'TP_RANGE_NOT_SATISFIABLE');
    assert.equal(past.headers['content-range'], `bytes */${text.length}`);
    const ifRange = await get(port, '/c/range', { range: 'bytes=0-1', 'if-range': '"old"' });
    assert.equal(ifRange.status, 200);
    assert.equal(ifRange.body.toString(), text);
    assert.equal(count('/c/range'), 1);
  });

  test('Accept-Encoding values with the same coding weights share a variant; a refused coding does not', async () => {
    const a = await get(port, '/c/json', { 'accept-encoding': 'br, gzip, deflate' });
    const b = await get(port, '/c/json', { 'accept-encoding': 'gzip, deflate, br' });
    const c = await get(port, '/c/json', { 'accept-encoding': 'gzip;q=0, br' });
    assert.equal(a.headers['content-encoding'], 'br');
    assert.equal(b.headers['x-cache'], 'HIT');
    assert.equal(b.headers['content-encoding'], 'br');
    assert.equal(c.headers['content-encoding'], 'br');
    assert.equal(c.headers['x-cache'], 'MISS');
  });

  test('requests waiting for a response that turns out not to be storable go upstream at once, not after its body', async () => {
    const started = performance.now();
    const all = await Promise.all(Array.from({ length: 5 }, () => get(port, '/c/slow-private')));
    const elapsed = performance.now() - started;
    assert.ok(all.every((r) => r.body.toString() === 'part end'));
    assert.equal(count('/c/slow-private'), 5);
    // Released when the head showed `private` (~0 ms), the others finish with it (~500 ms), not ~500 ms later.
    assert.ok(elapsed < 900, `${elapsed.toFixed(0)} ms`);
  });
});

describe('purging', () => {
  test('PURGE removes every variant of a URL, a path ending in * every URL under it', async () => {
    await get(port, '/c/p/one', { 'accept-encoding': 'gzip' });
    await get(port, '/c/p/one');
    await get(port, '/c/p/two');
    await get(port, '/c/px');
    const purged = await get(port, '/c/p/one', {}, 'PURGE');
    assert.equal(purged.status, 200);
    assert.deepEqual(JSON.parse(purged.body.toString()), { purged: 2 });
    assert.equal((await get(port, '/c/p/one')).headers['x-cache'], 'MISS');
    assert.equal((await get(port, '/c/p/two')).headers['x-cache'], 'HIT');
    const prefix = await get(port, '/c/p/*', {}, 'PURGE');
    assert.deepEqual(JSON.parse(prefix.body.toString()), { purged: 2 });
    assert.equal((await get(port, '/c/p/two')).headers['x-cache'], 'MISS');
    assert.equal((await get(port, '/c/px')).headers['x-cache'], 'HIT');
  });

  test('PURGE from an address outside purge.allow gets 403 problem+json and removes nothing', async () => {
    await get(port, '/c/guarded');
    const r = await get(port, '/c/guarded', { 'x-forwarded-for': '203.0.113.9' }, 'PURGE');
    assertProblem(r, 403, 'TP_PURGE_FORBIDDEN');
    assert.equal((await get(port, '/c/guarded')).headers['x-cache'], 'HIT');
  });

  test('PURGE is allowed to a named consumer and refused to another', async () => {
    const ops = { 'x-api-key': 'ops-key-0123456789abcdef' };
    const visitor = { 'x-api-key': 'visitor-key-0123456789abc' };
    await get(port, '/k/item', visitor);
    assert.equal((await get(port, '/k/item', visitor)).headers['x-cache'], 'HIT');
    assert.equal((await get(port, '/k/item', visitor, 'PURGE')).status, 403);
    const r = await get(port, '/k/item', ops, 'PURGE');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body.toString()), { purged: 1 });
  });
});

describe('with compress', () => {
  test("the issue's catalog route: gzip stored once, hits byte-identical, decompressing to the backend's JSON", async (t) => {
    const miss = await get(port, '/catalog/items', { 'accept-encoding': 'gzip' });
    const hit = await get(port, '/catalog/items', { 'accept-encoding': 'gzip;q=1.0' });
    const plain = await get(port, '/catalog/items');
    assert.equal(miss.headers['content-encoding'], 'gzip');
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.headers['content-encoding'], 'gzip');
    assert.match(String(hit.headers.vary), /accept-encoding/i);
    assert.deepEqual(hit.body, miss.body, 'the stored compressed bytes are replayed, not compressed again');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['x-cache'], 'MISS');
    assert.equal(count('/catalog/items'), 2);
  });

  test('a JSON body compresses well and round-trips byte-exact after decompression', async (t) => {
    const gz = await get(port, '/c/json', { 'accept-encoding': 'gzip' });
    const again = await get(port, '/c/json', { 'accept-encoding': 'gzip' });
    const ratio = gz.body.length / Buffer.byteLength(JSON_BODY);
    t.diagnostic(`JSON ${Buffer.byteLength(JSON_BODY)} B -> gzip ${gz.body.length} B (ratio ${ratio.toFixed(3)})`);
    assert.ok(ratio < 0.2, `ratio ${ratio}`);
    assert.equal(gunzipSync(gz.body).toString(), JSON_BODY);
    assert.equal(gunzipSync(again.body).toString(), JSON_BODY);
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.equal(again.headers['content-length'], String(gz.body.length));
  });
});

describe('reloads', () => {
  test('the memory cache survives a reload of the same config', async () => {
    await get(port, '/c/reload');
    assert.equal((await gw.reloader!.reload('test')).ok, true);
    const r = await get(port, '/c/reload');
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(count('/c/reload'), 1);
  });
});
