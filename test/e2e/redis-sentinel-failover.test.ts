// stores.redis with sentinels through a real failover (a master, one replica, three sentinels): limits counted
// exactly in the master; with the master SIGKILLed and not yet replaced, onStoreError decides (allow passes, deny
// answers 503 problem+json); once a sentinel names the promoted replica, the gateway follows it and the limits
// are exact again within 5 s, the counters written before the failover included (the replica had them). The
// cache (store: redis) steps aside during the outage and stores and hits in the new master after it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import { startSentinelSet, type SentinelSet } from '../helpers/redis-sentinel.ts';
import {
  json,
  request,
  startBackend,
  startGatewayYaml,
  type Backend,
  type SimpleResponse,
} from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

type Gateway = Awaited<ReturnType<typeof startGatewayYaml>>;

const LIMIT = 5;

describe('rate-limit on a Sentinel-watched Redis through a failover', () => {
  let set: SentinelSet;
  let backend: Backend;
  let gateway: Gateway;

  before(async () => {
    set = await startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
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
    sentinels: [${set.sentinelAddresses.map((a) => `"${a}"`).join(', ')}]
    name: mymaster
    commandTimeout: 500ms
routes:
  - name: allow
    match: { path: /allow }
    respond: { body: ok }
    plugins:
      - rate-limit: { limits: [{ requests: ${LIMIT}, per: 1m }], key: "header:x-tenant", store: redis, onStoreError: allow }
  - name: deny
    match: { path: /deny }
    respond: { body: ok }
    plugins:
      - rate-limit: { limits: [{ requests: ${LIMIT}, per: 1m }], key: "header:x-tenant", store: redis, onStoreError: deny }
  - name: docs
    match: { path: /docs }
    upstream: docs
    plugins: [{ cache: { store: redis } }]
`);
  });
  after(async () => {
    await gateway?.stop();
    await backend?.close();
    await set?.stop();
  });

  const cache = async (path: string) => (await request(gateway.port(), path)).headers['x-cache'];
  const send = (path: string, tenant: string) => request(gateway.port(), path, { headers: { 'x-tenant': tenant } });

  /** LIMIT requests pass, counted down in RateLimit, and the next one is 429. */
  async function exactLimit(path: string, tenant: string): Promise<void> {
    const rs: SimpleResponse[] = [];
    for (let i = 0; i <= LIMIT; i++) rs.push(await send(path, tenant));
    assert.deepEqual(
      rs.map((r) => r.status),
      [...Array<number>(LIMIT).fill(200), 429],
      `${tenant}: ${LIMIT} pass, then 429`,
    );
    assert.deepEqual(
      rs.slice(0, LIMIT).map((r) => /;r=(\d+);/.exec(String(r.headers.ratelimit))?.[1]),
      Array.from({ length: LIMIT }, (_, i) => String(LIMIT - 1 - i)),
      `${tenant}: every request counted once`,
    );
  }

  /** The rate-limit keys of `tenant` held by the node at `address`. */
  async function keysOf(address: string, tenant: string): Promise<string[]> {
    const client = set.clientOf(address);
    if (client.status === 'wait') await client.connect();
    return (await client.keys('turnpike:rl:*')).filter((k) => k.endsWith(`|h:${tenant}`));
  }

  /** Whether the node at `address` holds the cache record of `path`. */
  async function cachedIn(address: string, path: string): Promise<boolean> {
    const client = set.clientOf(address);
    if (client.status === 'wait') await client.connect();
    return (await client.keys('tp:cache:docs:u:*')).some((k) => k.endsWith(`${path}}`));
  }

  test('exact before, onStoreError while no master is known, exact again within 5 s of the promotion', async (t) => {
    const oldMaster = await set.masterAddress();
    await exactLimit('/deny', 'before');
    assert.equal((await keysOf(oldMaster, 'before')).length, 1, 'the counter lives in the master');
    assert.equal(await cache('/docs/before'), 'MISS');
    await until(() => cachedIn(oldMaster, '/docs/before'), 'the entry stored in the master'); // stored after the answer
    assert.equal(await cache('/docs/before'), 'HIT');
    // Replication is asynchronous: wait until the replica holds it too, so the failover is what the test sees.
    const replica = `127.0.0.1:${set.replica.port}`;
    await until(
      async () => (await keysOf(replica, 'before')).length === 1 && (await cachedIn(replica, '/docs/before')),
      'the replica',
    );

    set.master.process.kill('SIGKILL');
    const allow = await send('/allow', 'outage');
    const deny = await send('/deny', 'outage');
    const outageCache = await cache('/docs/before');
    const stillOld = await set.masterAddress();
    t.diagnostic(`master killed: allow ${allow.status}, deny ${deny.status}; sentinels name ${stillOld}`);
    assert.equal(stillOld, oldMaster, 'the answers came while the sentinels had not promoted yet (down-after 1 s)');
    assert.equal(allow.status, 200, 'onStoreError: allow lets the request through');
    assert.equal(allow.headers.ratelimit, undefined, 'no count to report without a master');
    assertProblem(deny, 503, 'TP_STORE_UNAVAILABLE');
    assert.equal(outageCache, 'MISS', 'the cache steps aside: the upstream answers');

    const newMaster = await until(
      async () => {
        const now = await set.masterAddress();
        return now !== oldMaster && now;
      },
      'the sentinels to promote the replica',
      30_000,
      50,
    );
    const promoted = performance.now();
    assert.equal(newMaster, `127.0.0.1:${set.replica.port}`);

    // Within 5 s of the promotion a request is counted in the new master: the client found it by itself.
    let probes = 0;
    const seen: string[] = []; // each probe's answer, for the failure message
    await until(
      async () => {
        const r = await send('/deny', `probe-${++probes}`);
        seen.push(`${(performance.now() - promoted).toFixed(0)}ms ${r.status}`);
        return r.status === 200 && (await keysOf(newMaster, `probe-${probes}`)).length === 1;
      },
      'a request counted in the new master',
      5000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; probes: ${seen.join(', ')}`);
    });
    t.diagnostic(
      `counted in the new master ${(performance.now() - promoted).toFixed(0)} ms after the promotion (${probes} probes)`,
    );

    // Exact again: a new counter on both routes, and the one written before the failover still refuses.
    await exactLimit('/deny', 'after');
    await exactLimit('/allow', 'after-allow');
    assert.equal((await keysOf(newMaster, 'after')).length, 1, 'the new counter lives in the new master');
    const before = await send('/deny', 'before');
    assert.equal(before.status, 429, 'the limit reached before the failover still holds (replicated)');
    // The cache too: the entry stored before is served from the new master, a new one is stored there.
    assert.equal(await cache('/docs/before'), 'HIT');
    assert.equal(await cache('/docs/after'), 'MISS');
    await until(() => cachedIn(newMaster, '/docs/after'), 'the entry stored in the new master');
    assert.equal(await cache('/docs/after'), 'HIT');
  });
});
