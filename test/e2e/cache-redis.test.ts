// cache: { store: redis } end to end: two gateway processes sharing one redis-server in front of one counting
// backend. Hits across instances, compressed variants stored once, PURGE seen by both, a Redis that freezes or
// dies (the cache steps aside, purges answer 503), and max-age expiry and 304 revalidation across instances.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { assertProblem } from '../helpers/problem.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import { startBackend, type Backend } from '../helpers/servers.ts';

// Both instances must see one Host, as behind a load balancer: the default cache key starts with it, and the
// Host a client sends to 127.0.0.1:PORT names each instance's own port.
const HOST = 'shop.test';
const OPS_KEY = 'ops-key-0000000000001';
const READER_KEY = 'reader-key-00000000001';

// ~20 kB of repetitive JSON, the kind compress is for.
const REPORT = Buffer.from(
  JSON.stringify({
    rows: Array.from({ length: 200 }, (_, i) => ({
      id: i,
      sku: `SKU-${String(i).padStart(6, '0')}`,
      name: `Widget ${i % 40}`,
      price: (i * 37) % 1000,
      currency: 'EUR',
      tags: ['catalog', 'stock'],
    })),
  }),
);

interface Got {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly ms: number;
}

function send(
  port: number,
  path: string,
  options: { method?: string; headers?: OutgoingHttpHeaders } = {},
): Promise<Got> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: { host: HOST, ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const purge = (port: number, path: string, headers: OutgoingHttpHeaders = {}) =>
  send(port, path, { method: 'PURGE', headers });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const bodyJson = (r: Got): any => JSON.parse(r.body.toString('utf8'));

/** The backend: counts what reaches it per URL (query included); each JSON answer names its serial number. */
function counter() {
  const seen = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url!;
    const n = (seen.get(url) ?? 0) + 1;
    seen.set(url, n);
    const path = url.split('?')[0]!;
    if (path.startsWith('/big/')) {
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'cache-control': 'max-age=60',
          'content-length': REPORT.length,
        })
        .end(REPORT);
      return;
    }
    const json = (headers: Record<string, string>): void => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ url, served: n }));
    };
    if (path.startsWith('/short/')) return json({ 'cache-control': 'max-age=1' });
    if (path.startsWith('/short-etag/')) {
      if (req.headers['if-none-match'] !== '"v1"') return json({ 'cache-control': 'max-age=1', etag: '"v1"' });
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=1' }).end();
      return;
    }
    json({ 'cache-control': 'max-age=60' });
  };
  return { handler, count: (url: string) => seen.get(url) ?? 0 };
}

/**
 * Entry writes as Redis reports them (keyevent notifications for SET). A fill reaches Redis after its response
 * went to the client, so a test waits for the write before asking the other instance.
 */
class EntryWrites {
  private readonly keys: string[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly sub: Redis;

  private constructor(sub: Redis) {
    this.sub = sub;
    sub.on('message', (_channel: string, key: string) => {
      this.keys.push(key);
      for (const check of [...this.listeners]) check();
    });
  }

  static async watch(port: number): Promise<EntryWrites> {
    const options = { maxRetriesPerRequest: 0, retryStrategy: () => null };
    const admin = new Redis(port, '127.0.0.1', options);
    await admin.config('SET', 'notify-keyspace-events', 'E$');
    admin.disconnect();
    const sub = new Redis(port, '127.0.0.1', options);
    sub.on('error', () => {}); // the outage tests kill this Redis
    await sub.subscribe('__keyevent@0__:set');
    return new EntryWrites(sub);
  }

  /** Writes so far of the entries (every variant) of `path` on `route`. */
  count(route: string, path: string): number {
    const prefix = `tp:cache:${route}:v:{${HOST}${path}}\n`;
    return this.keys.filter((k) => k.startsWith(prefix)).length;
  }

  /** Resolves once `count(route, path)` reaches `n`. */
  reach(route: string, path: string, n: number, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.count(route, path) < n) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`${route} ${path}: ${this.count(route, path)} entry writes in Redis, expected ${n}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  close(): void {
    this.sub.disconnect();
  }
}

function gatewayYaml(redisPort: number, backendUrl: string): string {
  return `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
stores: { redis: { url: "redis://127.0.0.1:${redisPort}", commandTimeout: 500ms } }
upstreams:
  b: { targets: [{ url: "${backendUrl}" }] }
consumers:
  - { name: ops, credentials: { apiKeys: [${OPS_KEY}] } }
  - { name: reader, credentials: { apiKeys: [${READER_KEY}] } }
routes:
  - name: secure
    match: { path: /secure }
    upstream: b
    plugins: [{ key-auth: {} }, { cache: { store: redis, purge: { consumers: [ops] } } }]
  - name: compressed
    match: { path: /big }
    upstream: b
    plugins: [{ cache: { store: redis, purge: { allow: [127.0.0.1/32] } } }, { compress: { minSize: 1kb } }]
  - name: api
    match: { path: / }
    upstream: b
    plugins: [{ cache: { store: redis, purge: { allow: [127.0.0.1/32] } } }]
`;
}

describe('cache store: redis shared by two gateway processes', () => {
  let redis: RedisServer;
  let writes: EntryWrites;
  let client: Redis;
  let backend: Backend;
  const { handler, count } = counter();
  let gateways: GatewayProcess[] = [];
  let A: number;
  let B: number;

  before(async () => {
    redis = await startRedisServer();
    writes = await EntryWrites.watch(redis.port);
    client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
    backend = await startBackend(handler);
    const yaml = gatewayYaml(redis.port, backend.url);
    gateways = await Promise.all([spawnGateway(yaml), spawnGateway(yaml)]);
    [A, B] = gateways.map((g) => g.port()) as [number, number];
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await backend?.close();
    writes?.close();
    client?.disconnect();
    await redis?.stop();
  });

  test('a response filled through gateway A is a HIT on gateway B: one backend request, identical bytes, MISS then HIT with Age', async () => {
    const path = '/doc/1';
    const miss = await send(A, path);
    assert.equal(miss.status, 200);
    assert.equal(miss.headers['x-cache'], 'MISS');
    assert.equal(miss.headers.age, undefined, 'a response straight from the backend has no Age');
    assert.deepEqual(bodyJson(miss), { url: path, served: 1 });
    await writes.reach('api', path, 1);

    const hit = await send(B, path);
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.match(String(hit.headers.age), /^\d+$/, 'a hit carries Age');
    assert.ok(Number(hit.headers.age) <= 5, `Age counts from the fill (got ${hit.headers.age})`);
    assert.ok(hit.body.equals(miss.body), 'byte-identical body');
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['cache-control'], 'max-age=60');

    assert.equal((await send(A, path)).headers['x-cache'], 'HIT', 'and on A, from the same entry');
    assert.equal(count(path), 1, 'the backend saw one request');
    assert.equal(writes.count('api', path), 1, 'hits store nothing');
  });

  test('compressed variants: gzip, br and identity are each stored once and served by both instances, decoding byte-exact', async (t) => {
    const path = '/big/report.json';
    const variants = [
      { name: 'gzip', headers: { 'accept-encoding': 'gzip' }, decode: gunzipSync },
      { name: 'br', headers: { 'accept-encoding': 'br' }, decode: brotliDecompressSync },
      { name: 'identity', headers: {}, decode: (b: Buffer) => b },
    ];
    const first = new Map<string, Buffer>();
    const labels: string[] = [];
    for (let round = 1; round <= 2; round++) {
      for (const [g, port] of [A, B].entries()) {
        for (const v of variants) {
          const r = await send(port, path, { headers: v.headers });
          const where = `round ${round}, gateway ${'AB'[g]}, ${v.name}`;
          assert.equal(r.status, 200, where);
          labels.push(String(r.headers['x-cache']));
          assert.equal(r.headers['content-encoding'], v.name === 'identity' ? undefined : v.name, where);
          assert.match(String(r.headers.vary), /accept-encoding/i, where);
          assert.equal(sha256(v.decode(r.body)), sha256(REPORT), `${where}: decodes to the backend's JSON`);
          const seen = first.get(v.name);
          if (seen === undefined) {
            first.set(v.name, r.body);
            await writes.reach('compressed', path, first.size); // stored before the next instance asks
          } else {
            assert.ok(r.body.equals(seen), `${where}: the stored bytes, not a new encoding`);
          }
        }
      }
    }
    assert.deepEqual(labels, ['MISS', 'MISS', 'MISS', ...Array<string>(9).fill('HIT')]);
    assert.equal(count(path), 3, '3 variants x 2 gateways x 2 rounds reach the backend 3 times');
    assert.equal(writes.count('compressed', path), 3, 'each variant written once');
    assert.equal(await client.scard(`tp:cache:compressed:s:{${HOST}${path}}`), 3, 'Redis names 3 variants for the URL');

    const gzipRatio = first.get('gzip')!.length / REPORT.length;
    const brRatio = first.get('br')!.length / REPORT.length;
    t.diagnostic(
      `JSON ${REPORT.length} B: gzip ${first.get('gzip')!.length} B (ratio ${gzipRatio.toFixed(3)}), br ${first.get('br')!.length} B (ratio ${brRatio.toFixed(3)})`,
    );
    assert.ok(REPORT.length > 15_000 && REPORT.length < 25_000, `~20 kB of JSON (${REPORT.length} B)`);
    assert.ok(gzipRatio < 0.3, `gzip shrinks repetitive JSON below 0.3 (got ${gzipRatio.toFixed(3)})`);
    assert.ok(brRatio < 0.3, `br shrinks repetitive JSON below 0.3 (got ${brRatio.toFixed(3)})`);
  });

  test('PURGE through gateway B removes the entry for gateway A: the next request on A is a MISS', async () => {
    const path = '/doc/purged';
    assert.equal((await send(A, path)).headers['x-cache'], 'MISS');
    await writes.reach('api', path, 1);
    assert.equal((await send(A, path)).headers['x-cache'], 'HIT');

    const purged = await purge(B, path);
    assert.equal(purged.status, 200);
    assert.equal(purged.headers['content-type'], 'application/json');
    assert.deepEqual(bodyJson(purged), { purged: 1 });
    assert.equal(
      await client.exists(`tp:cache:api:u:{${HOST}${path}}`, `tp:cache:api:s:{${HOST}${path}}`),
      0,
      'record and variant set gone too',
    );

    const after = await send(A, path);
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.deepEqual(bodyJson(after), { url: path, served: 2 });
    assert.equal(count(path), 2);
    assert.deepEqual(bodyJson(await purge(A, path + '?other')), { purged: 0 }, 'a URL never stored purges nothing');
    assert.equal(backend.requests.filter((r) => r.method === 'PURGE').length, 0, 'PURGE is answered by the gateway');
  });

  test('PURGE of a URL removes all of its compressed variants, for both instances', async () => {
    const path = '/big/other.json';
    const encodings = ['gzip', 'br', undefined];
    for (const [i, e] of encodings.entries()) {
      assert.equal(
        (await send(A, path, { headers: e === undefined ? {} : { 'accept-encoding': e } })).headers['x-cache'],
        'MISS',
      );
      await writes.reach('compressed', path, i + 1);
    }
    assert.deepEqual(bodyJson(await purge(B, path)), { purged: 3 });
    for (const e of encodings) {
      assert.equal(
        (await send(B, path, { headers: e === undefined ? {} : { 'accept-encoding': e } })).headers['x-cache'],
        'MISS',
        `${e ?? 'identity'}`,
      );
    }
    assert.equal(count(path), 6);
  });

  test('PURGE /catalog/* through B removes every URL under the prefix (queries included) and reports the count; others stay', async () => {
    const under = ['/catalog/a', '/catalog/b', '/catalog/b?page=2', '/catalog/c/d'];
    const outside = ['/catalogue', '/other/x'];
    for (const path of [...under, ...outside]) {
      assert.equal((await send(A, path)).headers['x-cache'], 'MISS', path);
      await writes.reach('api', path, 1);
    }
    const purged = await purge(B, '/catalog/*');
    assert.equal(purged.status, 200);
    assert.deepEqual(bodyJson(purged), { purged: under.length });
    for (const path of under) {
      assert.equal((await send(A, path)).headers['x-cache'], 'MISS', path);
      assert.equal(count(path), 2, path);
    }
    for (const path of outside) {
      assert.equal((await send(A, path)).headers['x-cache'], 'HIT', path);
      assert.equal(count(path), 1, path);
    }
    assert.deepEqual(bodyJson(await purge(A, '/nothing-here/*')), { purged: 0 });
  });

  test('PURGE from a consumer not in purge.consumers is 403 TP_PURGE_FORBIDDEN and removes nothing; a listed consumer purges', async () => {
    const path = '/secure/doc';
    const reader = { 'x-api-key': READER_KEY };
    assert.equal((await send(A, path, { headers: reader })).headers['x-cache'], 'MISS');
    await writes.reach('secure', path, 1);

    // From 127.0.0.1 too, but this route allows no addresses: only the listed consumers.
    const forbidden = await purge(B, path, reader);
    assertProblem(forbidden, 403, 'TP_PURGE_FORBIDDEN');
    assertProblem(await purge(B, path), 401, 'TP_UNAUTHENTICATED');
    assert.equal(
      (await send(A, path, { headers: reader })).headers['x-cache'],
      'HIT',
      'the refused purges removed nothing',
    );

    const allowed = await purge(B, path, { 'x-api-key': OPS_KEY });
    assert.equal(allowed.status, 200);
    assert.deepEqual(bodyJson(allowed), { purged: 1 });
    assert.equal((await send(A, path, { headers: reader })).headers['x-cache'], 'MISS');
    assert.equal(count(path), 2);
  });

  test('max-age=1 is a HIT on both instances within the second and a MISS on either after 1.2 s', async () => {
    const path = '/short/doc';
    const miss = await send(A, path);
    const filled = performance.now();
    assert.equal(miss.headers['x-cache'], 'MISS');
    await writes.reach('api', path, 1);
    const hits = [await send(B, path), await send(A, path)];
    const within = performance.now() - filled;
    assert.ok(within < 900, `the hits came within the second (${within.toFixed(0)} ms)`);
    assert.deepEqual(
      hits.map((r) => r.headers['x-cache']),
      ['HIT', 'HIT'],
    );
    assert.equal(count(path), 1);

    await sleep(1200 - (performance.now() - filled));
    const expired = await send(B, path);
    assert.equal(expired.headers['x-cache'], 'MISS');
    assert.deepEqual(bodyJson(expired), { url: path, served: 2 });
    await writes.reach('api', path, 2);
    assert.equal((await send(A, path)).headers['x-cache'], 'HIT', 'the refill through B serves A');
    assert.equal(count(path), 2);
  });

  test('max-age=1 with an ETag: after 1.2 s one instance REVALIDATES with a 304 and the other then HITs the refreshed entry', async () => {
    const path = '/short-etag/doc';
    const miss = await send(A, path);
    const filled = performance.now();
    assert.equal(miss.headers['x-cache'], 'MISS');
    await writes.reach('api', path, 1);
    assert.equal((await send(B, path)).headers['x-cache'], 'HIT');
    assert.ok(performance.now() - filled < 900, 'the hit came within the second');

    await sleep(1200 - (performance.now() - filled));
    const revalidated = await send(B, path);
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.headers['x-cache'], 'REVALIDATED');
    assert.ok(revalidated.body.equals(miss.body), 'the stored body, refreshed');
    assert.equal(revalidated.headers.etag, '"v1"');
    assert.equal(count(path), 2);
    const conditional = backend.requests.filter((r) => r.url === path).at(-1)!;
    assert.equal(conditional.headers['if-none-match'], '"v1"', 'revalidated with the stored validator');

    await writes.reach('api', path, 2);
    const hit = await send(A, path);
    assert.equal(hit.headers['x-cache'], 'HIT', 'the refreshed entry is fresh for the other instance');
    assert.ok(hit.body.equals(miss.body));
    assert.equal(count(path), 2);
  });
});

describe('cache store: redis, with Redis frozen or killed', () => {
  let redis: RedisServer;
  let writes: EntryWrites;
  let backend: Backend;
  const { handler, count } = counter();
  let gateways: GatewayProcess[] = [];
  let C: number;
  let D: number;

  before(async () => {
    redis = await startRedisServer(); // its own: this one gets killed
    writes = await EntryWrites.watch(redis.port);
    backend = await startBackend(handler);
    const yaml = gatewayYaml(redis.port, backend.url);
    gateways = await Promise.all([spawnGateway(yaml), spawnGateway(yaml)]);
    [C, D] = gateways.map((g) => g.port()) as [number, number];
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await backend?.close();
    writes?.close();
    await redis?.stop();
  });

  test('Redis frozen: requests get 200 MISS from the backend once the lookup times out (500 ms), PURGE answers 503; the cache works again after', async (t) => {
    const path = '/doc/frozen';
    assert.equal((await send(C, path)).headers['x-cache'], 'MISS');
    await writes.reach('api', path, 1);
    assert.equal((await send(D, path)).headers['x-cache'], 'HIT');

    const logged = gateways.map((g) => waitForLog(g, 'redis cache store error', 5000));
    redis.process.kill('SIGSTOP'); // connections open, no answers: the commandTimeout path
    let frozen: Got[];
    try {
      frozen = [await send(C, path), await send(D, path), await purge(C, path), await purge(D, '/catalog/*')];
    } finally {
      redis.process.kill('SIGCONT');
    }
    for (const line of await Promise.all(logged)) t.diagnostic(`logged: ${line}`);
    t.diagnostic(
      `frozen Redis: ${frozen.map((r) => `${r.status} ${r.headers['x-cache'] ?? ''} in ${r.ms.toFixed(0)} ms`).join(', ')}`,
    );
    const [c, d, purgeUrl, purgePrefix] = frozen;
    for (const r of [c!, d!]) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'MISS');
      assert.ok(r.ms < 2000, `answered without waiting for Redis beyond its timeout (${r.ms.toFixed(0)} ms)`);
    }
    assert.deepEqual(bodyJson(d!), { url: path, served: 3 }, 'from the backend');
    assert.equal(count(path), 3);
    for (const r of [purgeUrl!, purgePrefix!]) {
      assertProblem(r, 503, 'TP_STORE_UNAVAILABLE');
      assert.ok(r.ms < 2000, `PURGE gave up within the timeout (${r.ms.toFixed(0)} ms)`);
    }

    // Redis answers again: a fill through one instance is a hit on the other.
    const again = '/doc/after-freeze';
    assert.equal((await send(C, again)).headers['x-cache'], 'MISS');
    await writes.reach('api', again, 1);
    assert.equal((await send(D, again)).headers['x-cache'], 'HIT');
  });

  test('Redis killed: requests still get 200 MISS from the backend on both instances (never a 5xx), PURGE answers 503 TP_STORE_UNAVAILABLE', async (t) => {
    const path = '/doc/killed';
    assert.equal((await send(C, path)).headers['x-cache'], 'MISS');
    await writes.reach('api', path, 1);
    assert.equal((await send(D, path)).headers['x-cache'], 'HIT');

    redis.process.kill('SIGKILL');
    await once(redis.process, 'exit');

    const rs: Got[] = [];
    for (let i = 0; i < 3; i++) for (const port of [C, D]) rs.push(await send(port, path));
    t.diagnostic(
      `killed Redis: ${rs.map((r) => `${r.status} ${r.headers['x-cache']} ${r.ms.toFixed(0)} ms`).join(', ')}`,
    );
    for (const [i, r] of rs.entries()) {
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.headers['x-cache'], 'MISS', `request ${i}`);
      assert.deepEqual(bodyJson(r), { url: path, served: i + 2 }, `request ${i} reached the backend`);
      assert.ok(r.ms < 1000, `request ${i} did not wait on the dead Redis (${r.ms.toFixed(0)} ms)`);
    }
    assert.equal(count(path), 7);
    assertProblem(await purge(C, path), 503, 'TP_STORE_UNAVAILABLE');
    assertProblem(await purge(D, '/doc/*'), 503, 'TP_STORE_UNAVAILABLE');
    assertProblem(await purge(C, '/secure/doc', { 'x-api-key': OPS_KEY }), 503, 'TP_STORE_UNAVAILABLE');
    assertProblem(await purge(D, '/secure/doc', { 'x-api-key': READER_KEY }), 403, 'TP_PURGE_FORBIDDEN');

    // A dead Redis does not hold the processes up at shutdown.
    const codes = await Promise.all(gateways.map((g) => g.stop(5000)));
    assert.deepEqual(codes, [0, 0], 'both gateways exit by themselves');
    // Dozens of failed lookups, stores and purges in both tests: logged once per 10 s, not once per request.
    for (const g of gateways) {
      const lines = g.logLines.filter((l) => l.includes('redis cache store error'));
      assert.ok(
        lines.length >= 1 && lines.length <= 2,
        `pid ${g.pid}: ${lines.length} lines\n${g.logLines.join('\n')}`,
      );
    }
  });
});

/** The first stderr line of `g` containing `text` (logged so far or from now on). */
function waitForLog(g: GatewayProcess, text: string, timeoutMs: number): Promise<string> {
  const found = g.logLines.find((l) => l.includes(text));
  if (found !== undefined) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const onData = () => {
      const line = g.logLines.find((l) => l.includes(text));
      if (line === undefined) return;
      clearTimeout(timer);
      g.child.stderr!.off('data', onData);
      resolve(line);
    };
    const timer = setTimeout(() => {
      g.child.stderr!.off('data', onData);
      reject(new Error(`no log line with "${text}" within ${timeoutMs} ms:\n${g.logLines.join('\n')}`));
    }, timeoutMs);
    g.child.stderr!.on('data', onData);
  });
}
