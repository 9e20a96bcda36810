// stores.redis with cluster: a gateway on a real three-master Redis Cluster. Rate limits count exactly; the cache
// stores each URL's record, set and variants with one script (a CROSSSLOT error without their hash tag would turn
// every store into a miss), hits from whichever master holds the URL, and a prefix PURGE finds the URLs on every
// master.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisCluster, type RedisClusterSet } from '../helpers/redis-cluster.ts';
import { json, request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

type Gateway = Awaited<ReturnType<typeof startGatewayYaml>>;

const URLS = 12;

describe('a gateway on a Redis Cluster', () => {
  let cluster: RedisClusterSet;
  let backend: Backend;
  let gateway: Gateway;
  const nodes: Redis[] = [];

  before(async () => {
    cluster = await startRedisCluster();
    backend = await startBackend((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(`doc ${req.url}`);
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  docs: { targets: [{ url: "${backend.url}" }] }
stores:
  redis:
    cluster: [${cluster.addresses.map((a) => `"${a}"`).join(', ')}]
routes:
  - name: limited
    match: { path: /limited }
    respond: { body: ok }
    plugins:
      - rate-limit: { limits: [{ requests: 3, per: 1m }], key: "header:x-tenant", store: redis, onStoreError: deny }
  - name: docs
    match: { path: /docs }
    upstream: docs
    plugins:
      - cache: { store: redis, purge: { allow: [127.0.0.1/32] } }
`);
    for (const n of cluster.nodes) nodes.push(new Redis(n.port, '127.0.0.1', { maxRetriesPerRequest: 0 }));
  });
  after(async () => {
    for (const n of nodes) n.disconnect();
    await gateway?.stop();
    await backend?.close();
    await cluster?.stop();
  });

  /** How many keys matching `pattern` each node holds. */
  const spread = async (pattern: string) => Promise.all(nodes.map(async (n) => (await n.keys(pattern)).length));

  test('rate limits count exactly, whichever master holds the counter', async (t) => {
    for (const tenant of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push((await request(gateway.port(), '/limited', { headers: { 'x-tenant': tenant } })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429], `tenant ${tenant}`);
    }
    const counters = await spread('turnpike:rl:*');
    t.diagnostic(`counters per master: ${counters.join(' ')}`);
    assert.equal(
      counters.reduce((a, b) => a + b),
      6,
    );
  });

  test('the cache stores and hits on every master, and a prefix PURGE empties all of them', async (t) => {
    const get = (i: number) => request(gateway.port(), `/docs/${i}`);
    for (let i = 0; i < URLS; i++) assert.equal((await get(i)).headers['x-cache'], 'MISS');
    // Entries are stored once their answer has gone out: wait for all of them; if some never come (a CROSSSLOT
    // error), the HIT checks below fail naming the URL.
    const stored = async () => (await spread('tp:cache:docs:u:*')).reduce((a, b) => a + b) === URLS;
    await until(stored, `${URLS} entries stored`, 2000).catch(() => {});
    for (let i = 0; i < URLS; i++) {
      const r = await get(i);
      assert.equal(r.headers['x-cache'], 'HIT', `/docs/${i} stored (its script ran on one slot)`);
      assert.equal(r.body, `doc /docs/${i}`);
    }
    assert.equal(backend.requests.length, URLS, 'the upstream was asked once per URL');
    const records = await spread('tp:cache:docs:u:*');
    t.diagnostic(`cached URLs per master: ${records.join(' ')}`);
    assert.ok(records.filter((n) => n > 0).length >= 2, 'the URLs spread over several masters');

    const purged = await request(gateway.port(), '/docs/*', { method: 'PURGE' });
    assert.equal(purged.status, 200, purged.body);
    assert.equal(json(purged).purged, URLS, 'every URL found, on every master');
    assert.deepEqual(await spread('tp:cache:*'), [0, 0, 0], 'nothing left in the cluster');
    assert.equal((await get(0)).headers['x-cache'], 'MISS');
  });
});
