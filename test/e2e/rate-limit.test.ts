// rate-limit through real gateways: 429s, Retry-After and RateLimit fields, keys, and the Redis store shared by two
// gateway processes (accuracy), then with Redis frozen and killed (onStoreError within 1 s).
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { assertProblem } from '../helpers/problem.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import {
  json,
  request,
  startEchoBackend,
  startGatewayYaml,
  type Backend,
  type SimpleResponse,
} from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

type Gateway = Awaited<ReturnType<typeof startGatewayYaml>>;

async function burst(
  port: number,
  path: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<SimpleResponse[]> {
  const out: SimpleResponse[] = [];
  for (let i = 0; i < n; i++) out.push(await request(port, path, { headers }));
  return out;
}

const statuses = (rs: SimpleResponse[]) => rs.map((r) => r.status);

const JWT_SECRET = 'a-test-secret-of-at-least-32-bytes!!';
function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe('rate-limit with the memory store', () => {
  let backend: Backend;
  let gateway: Gateway;

  before(async () => {
    backend = await startEchoBackend('b');
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: [127.0.0.0/8] }
upstreams:
  b: { targets: [{ url: "${backend.url}" }] }
consumers:
  - { name: alice, credentials: { apiKeys: [alice-key-0000000001, alice-key-0000000002] } }
  - { name: bob, credentials: { apiKeys: [bob-key-000000000001] } }
routes:
  - name: per-consumer
    match: { path: /per-consumer }
    respond: { body: ok }
    plugins: [{ key-auth: {} }, { rate-limit: { limits: [{ requests: 2, per: 1m }] } }]
  - name: anonymous
    match: { path: /anonymous }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 2, per: 1m }], key: consumer } }]
  - name: per-tenant
    match: { path: /per-tenant }
    respond: { body: ok }
    plugins:
      - { jwt: { keys: [{ secret: "${JWT_SECRET}" }], algorithms: [HS256] } }
      - { rate-limit: { limits: [{ requests: 2, per: 1m }], key: "claim:tenant" } }
  - name: five
    match: { path: /five }
    upstream: b
    plugins: [{ rate-limit: { limits: [{ requests: 5, per: 1m }], key: ip } }]
  - name: five-too
    match: { path: /five-too }
    upstream: b
    plugins: [{ rate-limit: { limits: [{ requests: 5, per: 1m }], key: ip } }]
  - name: by-header
    match: { path: /by-header }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 2, per: 1m }], key: "header:X-Api-Key" } }]
  - name: two-limits
    match: { path: /two-limits }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 3, per: 1s }, { requests: 10000, per: 1d }], key: route } }]
  - name: shared-a
    match: { path: /shared-a }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 3, per: 1h }], key: ip, scope: global } }]
  - name: shared-b
    match: { path: /shared-b }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 3, per: 1h }], key: ip, scope: global } }]
`);
  });
  after(async () => {
    await gateway?.stop();
    await backend?.close();
  });

  test('limit 5 per minute: 5 pass with RateLimit fields, the 6th gets 429 with Retry-After', async (t) => {
    const xff = { 'x-forwarded-for': '203.0.113.1' };
    const rs = await burst(gateway.port(), '/five', 6, xff);
    assert.deepEqual(statuses(rs), [200, 200, 200, 200, 200, 429]);
    for (const [i, r] of rs.entries()) assert.equal(r.headers['ratelimit-policy'], '"1m";q=5;w=60', `response ${i}`);
    // 5 per minute = one every 12 s: each request leaves one less, the next one is free within 12 s.
    assert.deepEqual(
      rs.map((r) => r.headers.ratelimit),
      [4, 3, 2, 1, 0, 0].map((r) => `"1m";r=${r};t=12`),
    );
    const limited = rs[5]!;
    assertProblem(limited, 429, 'TP_RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '12', 'seconds, rounded up');
    assert.equal(backend.requests.filter((r) => r.url === '/five').length, 5, 'the 429 never reached the backend');
    t.diagnostic(`429 headers: Retry-After ${limited.headers['retry-after']}, RateLimit ${limited.headers.ratelimit}`);
  });

  test('key ip counts each client address apart; another route with the same limits has its own counters', async () => {
    const other = await burst(gateway.port(), '/five', 6, { 'x-forwarded-for': '203.0.113.2' });
    assert.deepEqual(statuses(other), [200, 200, 200, 200, 200, 429]);
    const sameIpOtherRoute = await burst(gateway.port(), '/five-too', 6, { 'x-forwarded-for': '203.0.113.1' });
    assert.deepEqual(statuses(sameIpOtherRoute), [200, 200, 200, 200, 200, 429]);
  });

  test('key consumer: each consumer has its own counter across its keys; without authentication, the client IP', async () => {
    const port = gateway.port();
    const as = (key: string) => ({ 'x-api-key': key });
    const alice = [
      ...(await burst(port, '/per-consumer', 1, as('alice-key-0000000001'))),
      ...(await burst(port, '/per-consumer', 2, as('alice-key-0000000002'))),
    ];
    assert.deepEqual(statuses(alice), [200, 200, 429], "both of alice's keys count against alice");
    assert.deepEqual(statuses(await burst(port, '/per-consumer', 3, as('bob-key-000000000001'))), [200, 200, 429]);
    // No authentication plugin on the route: the consumer key falls back to the client address.
    assert.deepEqual(statuses(await burst(port, '/anonymous', 3, { 'x-forwarded-for': '192.0.2.1' })), [200, 200, 429]);
    assert.deepEqual(statuses(await burst(port, '/anonymous', 3, { 'x-forwarded-for': '192.0.2.2' })), [200, 200, 429]);
  });

  test('key claim:NAME counts by a token claim: two subjects of one tenant share a counter', async () => {
    const port = gateway.port();
    const bearer = async (claims: Record<string, unknown>) => ({ authorization: `Bearer ${await token(claims)}` });
    const acme = [
      ...(await burst(port, '/per-tenant', 2, await bearer({ sub: 'u1', tenant: 'acme' }))),
      ...(await burst(port, '/per-tenant', 1, await bearer({ sub: 'u2', tenant: 'acme' }))),
    ];
    assert.deepEqual(statuses(acme), [200, 200, 429]);
    assert.deepEqual(
      statuses(await burst(port, '/per-tenant', 3, await bearer({ sub: 'u3', tenant: 'globex' }))),
      [200, 200, 429],
    );
  });

  test('scope global: routes with the same limits and key share counters', async () => {
    const xff = { 'x-forwarded-for': '203.0.113.9' };
    const a = await burst(gateway.port(), '/shared-a', 2, xff);
    const b = await burst(gateway.port(), '/shared-b', 2, xff);
    assert.deepEqual([...statuses(a), ...statuses(b)], [200, 200, 200, 429]);
  });

  test('key header:NAME counts each header value apart, and falls back to the client IP without the header', async () => {
    const port = gateway.port();
    assert.deepEqual(statuses(await burst(port, '/by-header', 3, { 'x-api-key': 'alpha' })), [200, 200, 429]);
    assert.deepEqual(statuses(await burst(port, '/by-header', 3, { 'x-api-key': 'beta' })), [200, 200, 429]);
    // Without the header: by IP, so two clients without it are still apart, and apart from header values.
    assert.deepEqual(
      statuses(await burst(port, '/by-header', 3, { 'x-forwarded-for': '198.51.100.1' })),
      [200, 200, 429],
    );
    assert.deepEqual(
      statuses(await burst(port, '/by-header', 3, { 'x-forwarded-for': '198.51.100.2' })),
      [200, 200, 429],
    );
    // A header value that equals an address does not touch that address's counter.
    assert.deepEqual(statuses(await burst(port, '/by-header', 1, { 'x-api-key': '198.51.100.3' })), [200]);
    assert.deepEqual(
      statuses(await burst(port, '/by-header', 3, { 'x-forwarded-for': '198.51.100.3' })),
      [200, 200, 429],
    );
  });

  test('several limits: both are announced and the tighter one decides', async () => {
    const rs = await burst(gateway.port(), '/two-limits', 4);
    assert.deepEqual(statuses(rs), [200, 200, 200, 429]);
    assert.equal(rs[0]!.headers['ratelimit-policy'], '"1s";q=3;w=1, "1d";q=10000;w=86400');
    assert.equal(rs[2]!.headers.ratelimit, '"1s";r=0;t=1, "1d";r=9997;t=9');
    assert.equal(rs[3]!.headers.ratelimit, '"1s";r=0;t=1, "1d";r=9997;t=9', 'the denied request consumed nothing');
    assert.equal(rs[3]!.headers['retry-after'], '1');
  });

  test('store: redis without stores.redis fails at load with a clear message', async () => {
    await assert.rejects(
      startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes:
  - match: { path: / }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 5, per: 1m }], store: redis } }]
`),
      /stores: \{ redis/,
    );
  });
});

describe('rate-limit with the Redis store', () => {
  let redis: RedisServer;
  let client: Redis;
  const processes: GatewayProcess[] = [];
  let gateway: Gateway | undefined;

  before(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
  });
  after(async () => {
    for (const p of processes) await p.stop();
    await gateway?.stop();
    client?.disconnect();
    await redis?.stop();
  });

  test('two gateway processes sharing Redis allow 100 of 300 concurrent requests (plus what GCRA regains)', async (t) => {
    const yaml = `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
stores: { redis: { url: "redis://127.0.0.1:${redis.port}" } }
routes:
  - name: api
    match: { path: / }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 100, per: 1m }], key: route, store: redis } }]
`;
    processes.push(await spawnGateway(yaml), await spawnGateway(yaml));
    const ports = processes.map((p) => p.port());
    const started = performance.now();
    const rs = await Promise.all(Array.from({ length: 300 }, (_, i) => request(ports[i % 2]!, '/', { agent: false })));
    const elapsed = performance.now() - started;
    const allowed = rs.filter((r) => r.status === 200).length;
    assert.equal(allowed + rs.filter((r) => r.status === 429).length, 300, 'every answer is 200 or 429');
    // GCRA hands back one request per T = 600 ms: over the burst it may legitimately admit floor(elapsed / T) more.
    const regained = Math.floor(elapsed / 600);
    t.diagnostic(
      `allowed ${allowed} of 300 in ${elapsed.toFixed(0)} ms (GCRA may regain ${regained}; bound ${100 + regained + 1})`,
    );
    t.diagnostic(
      `per gateway: ${ports.map((_, g) => rs.filter((r, i) => i % 2 === g && r.status === 200).length).join(' + ')}`,
    );
    assert.ok(allowed >= 100, `at least the burst of 100 passes (got ${allowed})`);
    assert.ok(allowed <= 100 + regained + 1, `at most 100 + ${regained} regained + 1 (got ${allowed})`);

    const keys = await client.keys('*');
    assert.deepEqual(keys, ['turnpike:rl:api|100/60000|route|route']);
    const ttl = await client.pttl(keys[0]!);
    assert.ok(ttl > 0 && ttl <= 60_000, `the key expires within the period (pttl ${ttl})`);
  });

  test('Redis frozen or killed: onStoreError allow passes and deny answers 503, both within 1 s', async (t) => {
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
stores: { redis: { url: "redis://127.0.0.1:${redis.port}", commandTimeout: 500ms } }
routes:
  - name: allow
    match: { path: /allow }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 1000, per: 1m }], key: ip, store: redis, onStoreError: allow } }]
  - name: deny
    match: { path: /deny }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 1000, per: 1m }], key: ip, store: redis, onStoreError: deny } }]
`);
    const port = gateway.port();
    const timed = async (path: string) => {
      const start = performance.now();
      const r = await request(port, path);
      return { r, ms: performance.now() - start };
    };
    // Healthy first: answers come from Redis (the RateLimit field shows a count).
    assert.equal((await timed('/allow')).r.headers.ratelimit, '"1m";r=999;t=1');
    assert.equal((await timed('/deny')).r.status, 200);

    // Store failures are published on the event stream (the metrics subscriber counts them there).
    const storeErrors: unknown[] = [];
    const onDecision = (m: unknown) => {
      if ((m as { storeError?: string }).storeError !== undefined) storeErrors.push(m);
    };
    subscribe('turnpike:ratelimit', onDecision);
    redis.process.kill('SIGSTOP'); // connection open, no answers: the timeout path
    try {
      const allow = await timed('/allow');
      const deny = await timed('/deny');
      t.diagnostic(
        `frozen Redis: allow ${allow.r.status} in ${allow.ms.toFixed(0)} ms, deny ${deny.r.status} in ${deny.ms.toFixed(0)} ms`,
      );
      assert.equal(allow.r.status, 200);
      assert.equal(allow.r.headers.ratelimit, undefined, 'no count to report');
      assert.equal(deny.r.status, 503);
      assert.equal(json(deny.r).code, 'TP_STORE_UNAVAILABLE');
      assert.ok(allow.ms < 1000 && deny.ms < 1000, 'within 1 s');
    } finally {
      redis.process.kill('SIGCONT');
    }
    assert.equal(storeErrors.length, 2, 'both failures published');

    redis.process.kill('SIGKILL'); // connection refused: fails at once
    await once(redis.process, 'exit');
    const allow = await timed('/allow');
    const deny = await timed('/deny');
    t.diagnostic(
      `killed Redis: allow ${allow.r.status} in ${allow.ms.toFixed(1)} ms, deny ${deny.r.status} in ${deny.ms.toFixed(1)} ms`,
    );
    assert.equal(allow.r.status, 200);
    assert.equal(deny.r.status, 503);
    assert.ok(allow.ms < 1000 && deny.ms < 1000, 'within 1 s');
    assert.equal(storeErrors.length, 4);
    unsubscribe('turnpike:ratelimit', onDecision);

    // The gateway processes of the first test (onStoreError: allow by default) let requests through and log the
    // outage once per interval, not once per request.
    const p = processes[0]!;
    for (let i = 0; i < 3; i++) assert.equal((await request(p.port(), '/', { agent: false })).status, 200);
    const outageLines = () => p.logLines.filter((l) => l.includes('rate-limit store unavailable'));
    await until(() => outageLines().length > 0, 'the outage log line', 2000);
    assert.equal(outageLines().length, 1, p.logLines.join('\n'));
    t.diagnostic(`logged: ${outageLines()[0]}`);
  });
});
