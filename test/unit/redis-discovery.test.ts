// Redis discovery below the runtime: the key layout (a hash-tagged key per instance, a JSON value, a TTL), what a
// set of keys becomes as targets, the config rules (discover.redis needs stores.redis, at its key path), and the
// loop's rule that a Redis that stops answering keeps the last set. Against a real redis-server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import {
  deregister,
  instanceKey,
  listRegistrations,
  parseRegistration,
  register,
  registrationUrlProblem,
} from '../../src/discovery/redis-keys.ts';
import { redisProvider } from '../../src/discovery/redis.ts';
import { DiscoveryLoop } from '../../src/discovery/loop.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { newGateway } from '../../src/observability/events.ts';
import { ManualClock } from '../helpers/clock.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import { until } from '../helpers/wait.ts';

const PREFIX = 'turnpike:services:';
let server: RedisServer;
let client: Redis;
before(async () => {
  server = await startRedisServer();
  client = new Redis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
  client.on('error', () => {});
  await client.connect();
});
after(async () => {
  client.disconnect();
  await server.stop();
});

describe('the key layout', () => {
  test('a key per instance: {prefix+service}:origin (a Cluster hash tag), a JSON value, PX = the TTL; an index set', async () => {
    assert.equal(
      instanceKey(PREFIX, 'ledger', 'http://10.0.0.5:8080/'),
      '{turnpike:services:ledger}:http://10.0.0.5:8080',
    );
    await register(client, PREFIX, 'ledger', { url: 'http://127.0.0.1:8080', weight: 3 }, 10_000);
    const key = '{turnpike:services:ledger}:http://127.0.0.1:8080';
    assert.deepEqual(JSON.parse((await client.get(key))!), { url: 'http://127.0.0.1:8080', weight: 3 });
    const ttl = await client.pttl(key);
    assert.ok(ttl > 0 && ttl <= 10_000, `a TTL of 10 s at most (${ttl})`);
    assert.deepEqual(await client.smembers('{turnpike:services:ledger}'), ['http://127.0.0.1:8080']);
    assert.equal(await deregister(client, PREFIX, 'ledger', 'http://127.0.0.1:8080'), true);
    assert.equal(await client.exists(key), 0);
    assert.deepEqual(await client.smembers('{turnpike:services:ledger}'), [], 'the index entry goes with the key');
    assert.equal(await deregister(client, PREFIX, 'ledger', 'http://127.0.0.1:8080'), false);
  });

  test('a registration URL is an http(s) origin', () => {
    assert.equal(registrationUrlProblem('http://10.0.0.5:8080'), undefined);
    assert.equal(registrationUrlProblem('https://[::1]:8443/'), undefined);
    assert.match(registrationUrlProblem('http://10.0.0.5:8080/api')!, /origin/);
    assert.match(registrationUrlProblem('tcp://10.0.0.5:8080')!, /http/);
    assert.match(registrationUrlProblem('10.0.0.5:8080')!, /http|URL/);
  });

  test("a value becomes a target in the upstream's scheme; what is not a registration is left out", () => {
    assert.deepEqual(parseRegistration('{"url":"http://10.0.0.5:8080","weight":5}', 'https'), {
      url: 'https://10.0.0.5:8080',
      weight: 5,
      backup: false,
    });
    assert.deepEqual(parseRegistration('{"url":"http://10.0.0.5:8080","weight":0}', 'http')?.weight, 1);
    assert.equal(parseRegistration('{"url":"http://10.0.0.5:8080"}', 'http')?.weight, 1);
    for (const bad of [null, 'nope', '42', '{"url":"ftp://x:1"}', '{}'])
      assert.equal(parseRegistration(bad, 'http'), undefined, String(bad));
  });
});

describe('listing a service', () => {
  test('every live instance of the service, sorted; other services, other prefixes and junk values are not', async () => {
    await client.flushdb();
    await register(client, PREFIX, 'orders', { url: 'http://127.0.0.1:9002' }, 10_000);
    await register(client, PREFIX, 'orders', { url: 'http://127.0.0.1:9001', weight: 2 }, 10_000);
    await register(client, PREFIX, 'orders-v2', { url: 'http://127.0.0.1:9003' }, 10_000);
    await register(client, 'other:', 'orders', { url: 'http://127.0.0.1:9004' }, 10_000);
    await client.set('{turnpike:services:orders}:junk', 'not json');
    await client.sadd('{turnpike:services:orders}', 'junk');
    // A key the index does not name is not read: registering is SET and SADD (the README says so).
    await client.set('{turnpike:services:orders}:http://127.0.0.1:9009', '{"url":"http://127.0.0.1:9009"}');
    assert.deepEqual(await listRegistrations(client, PREFIX, 'orders', 'http'), [
      { url: 'http://127.0.0.1:9001', weight: 2, backup: false },
      { url: 'http://127.0.0.1:9002', weight: 1, backup: false },
    ]);
    assert.deepEqual(await listRegistrations(client, PREFIX, 'nobody', 'http'), []);
  });

  test('an instance whose TTL ended is gone from the next listing, and from the index', async () => {
    await client.flushdb();
    await register(client, PREFIX, 'short', { url: 'http://127.0.0.1:9005' }, 50);
    await register(client, PREFIX, 'short', { url: 'http://127.0.0.1:9006' }, 60_000);
    // Redis's own clock ends the TTL: poll the listing (bounded) rather than sleep.
    await until(
      async () => (await listRegistrations(client, PREFIX, 'short', 'http')).length === 1,
      'the 50 ms registration to expire',
    );
    assert.deepEqual(
      (await listRegistrations(client, PREFIX, 'short', 'http')).map((t) => t.url),
      ['http://127.0.0.1:9006'],
    );
    assert.deepEqual(await client.smembers('{turnpike:services:short}'), ['http://127.0.0.1:9006']);
  });
});

describe('config', () => {
  const yaml = (stores: string) => `
listeners: [{ name: web, protocol: http, port: 8080 }]
discovery:
  redis: { prefix: "turnpike:services:" }  # uses stores.redis; services register with a TTL
upstreams:
  ledger:   { discover: { redis: { service: ledger } } }
routes: [{ match: { path: / }, upstream: ledger }]
${stores}`;

  test('discover.redis with stores.redis validates; the defaults', () => {
    const { config } = loadConfigText(
      yaml('stores: { redis: { url: "redis://127.0.0.1:6379" } }'),
      'x.yaml',
      LOAD_OPTIONS,
    );
    assert.deepEqual(config.discovery.redis, { prefix: PREFIX, refresh: 1000 });
    assert.deepEqual(config.upstreams.ledger!.discover!.redis, { service: 'ledger' });
    assert.equal(redisProvider.describe(config.upstreams.ledger!.discover!), 'service ledger');
  });

  test('discover.redis without stores.redis is an error at its key path', () => {
    assert.throws(
      () => loadConfigText(yaml(''), 'x.yaml', LOAD_OPTIONS),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.path === 'upstreams.ledger.discover.redis' && /stores\.redis/.test(p.message)),
    );
  });

  test('a service name or a prefix that would break the key layout is refused', () => {
    const bad = yaml('stores: { redis: { url: "redis://127.0.0.1:6379" } }');
    assert.throws(
      () => loadConfigText(bad.replace('service: ledger', 'service: "led*ger"'), 'x.yaml', LOAD_OPTIONS),
      (err: unknown) =>
        err instanceof ConfigError && err.problems.some((p) => p.path === 'upstreams.ledger.discover.redis.service'),
    );
    assert.throws(
      () => loadConfigText(bad.replace('prefix: "turnpike:services:"', 'prefix: "{x}"'), 'x.yaml', LOAD_OPTIONS),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'discovery.redis.prefix'),
    );
  });
});

test('a Redis that stops answering keeps the last set (the round fails, one warn line); no client fails the round', async () => {
  const own = await startRedisServer();
  const redis = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 500 });
  redis.on('error', () => {});
  try {
    await until(() => redis.status === 'ready', 'the client to connect');
    await register(redis, PREFIX, 'ledger', { url: 'http://127.0.0.1:9010' }, 60_000);
    const settings = { dns: {}, redis: { prefix: PREFIX, refresh: 1000 } } as never;
    const discover = { redis: { service: 'ledger' }, scheme: 'http', emptyGrace: 30_000 } as never;
    const pool = {
      added: [] as string[],
      addTarget: (t: { url: string }) => void pool.added.push(t.url),
      drainTarget: () => undefined,
    };
    const warned: string[] = [];
    const loop = new DiscoveryLoop({
      upstream: 'ledger',
      provider: 'redis',
      source: 'redis service ledger',
      resolve: redisProvider.create(settings, discover, { redis: () => redis }),
      pool: () => pool,
      clock: new ManualClock(),
      minRefreshMs: 1000,
      retryMs: 1000,
      emptyGraceMs: 30_000,
      gateway: newGateway(),
      log: { warn: (_f, msg) => void warned.push(msg), info: () => {} },
    });
    await loop.refresh();
    assert.deepEqual(
      loop.applier.current.map((t) => t.url),
      ['http://127.0.0.1:9010'],
    );
    own.process.kill('SIGKILL');
    await until(() => redis.status !== 'ready', 'the client to see Redis gone');
    await loop.refresh();
    assert.deepEqual(
      loop.applier.current.map((t) => t.url),
      ['http://127.0.0.1:9010'],
      'the last set stays',
    );
    assert.equal(warned.length, 1);
    assert.equal(
      await redisProvider
        .create(settings, discover, { redis: () => undefined })(new AbortController().signal)
        .then(
          () => 'resolved',
          (err: Error) => err.message,
        ),
      'discover.redis needs the top-level stores.redis',
    );
  } finally {
    redis.disconnect();
    await own.stop();
  }
});
