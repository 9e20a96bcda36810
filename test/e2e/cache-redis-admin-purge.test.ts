// POST /api/cache/purge reaches Redis-backed caches too (not only the memory ones): by URL and by prefix, summed
// with the memory caches, counted once with two workers sharing one Redis, and a 503 problem when Redis does not
// answer (never a 200 that leaves the entry served).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { assertProblem } from '../helpers/problem.ts';
import { spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import { json, request, startBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const HOST = 'shop.test';

function gatewayYaml(redisPort: number, backendUrl: string, workers: number): string {
  return `
workers: ${workers}
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { port: 0 }
stores: { redis: { url: "redis://127.0.0.1:${redisPort}", commandTimeout: 500ms } }
upstreams: { b: { targets: [{ url: "${backendUrl}" }] } }
routes:
  - { name: local, match: { path: /local }, upstream: b, plugins: [{ cache: { store: memory } }] }
  - { name: shop, match: { path: /shop }, upstream: b, plugins: [{ cache: { store: redis } }] }
  - { name: api, match: { path: / }, upstream: b, plugins: [{ cache: { store: redis } }] }
`;
}

interface Setup {
  redis: RedisServer;
  client: Redis;
  backend: Backend;
  gw: GatewayProcess;
}

async function setUp(workers: number): Promise<Setup> {
  const redis = await startRedisServer();
  const client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {}); // the outage tests freeze this Redis
  const backend = await startBackend((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end(`body of ${req.url}`);
  });
  const gw = await spawnGateway(gatewayYaml(redis.port, backend.url, workers), { listeners: 2 });
  if (workers > 1) await untilWorkersStarted(gw);
  return { redis, client, backend, gw };
}

async function tearDown(s: Partial<Setup>): Promise<void> {
  await s.gw?.stop();
  await s.backend?.close();
  s.client?.disconnect();
  await s.redis?.stop();
}

/** A GET through the gateway, as a client of HOST; resolves with its X-Cache. */
async function get(s: Setup, path: string): Promise<string> {
  const r = await request(s.gw.port('web'), path, { headers: { host: HOST }, agent: false });
  assert.equal(r.status, 200, r.body);
  return String(r.headers['x-cache']);
}

/** Resolves once the entry of `path` is in Redis: a fill is written after its response went out. */
async function stored(s: Setup, route: string, path: string): Promise<void> {
  await until(() => s.client.exists(`tp:cache:${route}:u:{${HOST}${path}}`), `${path} stored in Redis`);
}

/** MISS, then (once stored) HIT. */
async function fill(s: Setup, route: string, path: string): Promise<void> {
  assert.equal(await get(s, path), 'MISS', path);
  if (route !== 'local') await stored(s, route, path);
  assert.equal(await get(s, path), 'HIT', path);
}

function purge(s: Setup, body: object) {
  return request(s.gw.port('admin'), '/api/cache/purge', {
    method: 'POST',
    body: JSON.stringify(body),
    agent: false,
  });
}

const seen = (s: Setup, path: string) => s.backend.requests.filter((r) => r.url === path).length;

/** Runs `fn` with this Redis frozen (connections open, no answers: the commandTimeout path). */
async function frozen<T>(redis: RedisServer, fn: () => Promise<T>): Promise<T> {
  redis.process.kill('SIGSTOP');
  try {
    return await fn();
  } finally {
    redis.process.kill('SIGCONT');
  }
}

describe('admin cache purge with store: redis, one process', () => {
  const s: Partial<Setup> = {};
  before(async () => Object.assign(s, await setUp(1)));
  after(() => tearDown(s));

  test('by URL: the entry leaves Redis and the next GET is a MISS', async () => {
    const t = s as Setup;
    await fill(t, 'api', '/doc/1');
    await fill(t, 'api', '/doc/2');
    const r = await purge(t, { url: `http://${HOST}/doc/1` });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(json(r), { purged: 1 });
    assert.equal(await t.client.exists(`tp:cache:api:u:{${HOST}/doc/1}`, `tp:cache:api:s:{${HOST}/doc/1}`), 0);
    assert.equal(await get(t, '/doc/1'), 'MISS');
    assert.equal(seen(t, '/doc/1'), 2, 'the backend was asked again');
    assert.equal(await get(t, '/doc/2'), 'HIT', 'another URL stays');
    assert.deepEqual(json(await purge(t, { url: `http://${HOST}/never?q=1` })), { purged: 0 }, 'never stored');
  });

  test('by prefix: every URL under it in every Redis namespace and memory cache, summed; the rest stays', async () => {
    const t = s as Setup;
    await fill(t, 'api', '/catalog/a');
    await fill(t, 'api', '/catalog/b?page=2');
    await fill(t, 'shop', '/shop/catalog/x');
    await fill(t, 'api', '/catalogue');
    await fill(t, 'local', '/local/catalog/m');

    // Another host's prefix purges nothing.
    assert.deepEqual(json(await purge(t, { prefix: '/catalog/', host: 'other.test' })), { purged: 0 });
    assert.equal(await get(t, '/catalog/a'), 'HIT');

    const r = await purge(t, { prefix: '/catalog/', host: HOST });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(json(r), { purged: 2 });
    assert.equal(await get(t, '/catalog/a'), 'MISS');
    assert.equal(await get(t, '/catalog/b?page=2'), 'MISS');
    assert.equal(await get(t, '/catalogue'), 'HIT', 'outside the prefix');
    assert.equal(await get(t, '/shop/catalog/x'), 'HIT', 'a path that only contains the prefix');

    // One purge reaches both Redis namespaces and the memory cache: api holds /doc/1 (refilled above), /doc/2,
    // /catalog/a, /catalog/b?page=2 (both refilled) and /catalogue; shop one URL; the memory cache one.
    for (const path of ['/doc/1', '/catalog/a', '/catalog/b?page=2']) await stored(t, 'api', path);
    const all = await purge(t, { prefix: '/' });
    assert.equal(all.status, 200, all.body);
    assert.deepEqual(json(all), { purged: 7 });
    assert.deepEqual(await t.client.keys('tp:cache:*'), [], 'nothing left in Redis');
    for (const path of ['/shop/catalog/x', '/catalogue', '/local/catalog/m', '/doc/2']) {
      assert.equal(await get(t, path), 'MISS', path);
    }
  });

  test('with Redis frozen, the purge answers 503 TP_STORE_UNAVAILABLE (problem+json) and works again after', async () => {
    const t = s as Setup;
    await fill(t, 'api', '/doc/frozen');
    const [byUrl, byPrefix] = await frozen(t.redis, async () => [
      await purge(t, { url: `http://${HOST}/doc/frozen` }),
      await purge(t, { prefix: '/doc/' }),
    ]);
    assertProblem(byUrl!, 503, 'TP_STORE_UNAVAILABLE');
    assertProblem(byPrefix!, 503, 'TP_STORE_UNAVAILABLE');
    // The frozen purges may run once Redis wakes: the next one counts 0 or 1, and the entry is gone after it.
    const again = await purge(t, { url: `http://${HOST}/doc/frozen` });
    assert.equal(again.status, 200, again.body);
    assert.equal(await get(t, '/doc/frozen'), 'MISS');
  });
});

describe('admin cache purge with store: redis, two workers sharing one Redis', () => {
  const s: Partial<Setup> = {};
  before(async () => Object.assign(s, await setUp(2)));
  after(() => tearDown(s));

  test('each worker purges Redis; the entry is counted once and the next GET is a MISS', async () => {
    const t = s as Setup;
    await fill(t, 'api', '/doc/w');
    await fill(t, 'api', '/list/1');
    await fill(t, 'api', '/list/2');
    await fill(t, 'api', '/keep');
    const byUrl = await purge(t, { url: `http://${HOST}/doc/w` });
    assert.equal(byUrl.status, 200, byUrl.body);
    assert.deepEqual(json(byUrl), { purged: 1 }, 'two workers, one entry');
    const byPrefix = await purge(t, { prefix: '/list/' });
    assert.equal(byPrefix.status, 200, byPrefix.body);
    assert.deepEqual(json(byPrefix), { purged: 2 });
    for (const path of ['/doc/w', '/list/1', '/list/2']) assert.equal(await get(t, path), 'MISS', path);
    assert.equal(await get(t, '/keep'), 'HIT');
  });

  test('with Redis frozen, the purge answers 503 TP_STORE_UNAVAILABLE', async () => {
    const t = s as Setup;
    await fill(t, 'api', '/doc/wf');
    const r = await frozen(t.redis, () => purge(t, { prefix: '/doc/' }));
    assertProblem(r, 503, 'TP_STORE_UNAVAILABLE');
  });
});
