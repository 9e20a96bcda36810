// stores.redis: exactly one of url, sentinels (with name) or cluster, with credentials and TLS; errors name the
// key path; each form builds the client it names (a plain Redis, a Sentinel-following Redis, a Cluster).
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { createRedisClient, RedisClients, type RedisSettings } from '../../src/stores/redis-client.ts';
import { redactConfig } from '../../src/admin/redact.ts';
import { TurnpikeError } from '../../src/errors.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { TestPki } from '../helpers/certs.ts';

const config = (stores: string) => `listeners: [{ name: web, protocol: http, port: 8080 }]
routes: [{ match: { path: / }, respond: { body: ok } }]
${stores}
`;

function load(text: string, env: Record<string, string> = {}) {
  return loadConfigText(text, 'cfg.yaml', { ...LOAD_OPTIONS, env, readFiles: false }).config;
}

/** "path: message" of each problem (empty: valid). */
function problems(stores: string): string[] {
  try {
    load(config(stores));
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('stores.redis config', () => {
  test("the issue's example validates verbatim", () => {
    const stores = `stores:
  redis:
    sentinels: ["127.0.0.1:26379"]         # or url: redis://..., or cluster: [host:port, ...]
    name: mymaster
`;
    const redis = load(config(stores)).stores.redis!;
    assert.deepEqual(redis.sentinels, ['127.0.0.1:26379']);
    assert.equal(redis.name, 'mymaster');
    assert.equal(redis.commandTimeout, 500, 'the defaults still apply');
  });

  test('url, cluster, credentials from the environment and tls load', () => {
    assert.deepEqual(problems('stores: { redis: { url: "redis://127.0.0.1:6379", connectTimeout: 2s } }'), []);
    assert.deepEqual(problems('stores: { redis: { cluster: ["10.0.0.1:6379", "[::1]:7000", "redis-3:7001"] } }'), []);
    const redis = load(
      config(`stores:
  redis:
    sentinels: ["10.0.0.1:26379", "10.0.0.2:26379"]
    name: mymaster
    username: turnpike
    password: \${REDIS_PASSWORD}
    sentinelPassword: "\${SENTINEL_PASSWORD}"
    tls: { ca: certs/redis-ca.pem, serverName: redis.internal }
`),
      { REDIS_PASSWORD: 'from-env', SENTINEL_PASSWORD: 's-env' },
    ).stores.redis!;
    assert.equal(redis.password, 'from-env');
    assert.equal(redis.sentinelPassword, 's-env');
    assert.deepEqual(redis.tls, { ca: 'certs/redis-ca.pem', serverName: 'redis.internal', insecureSkipVerify: false });
    assert.deepEqual(problems('stores: { redis: { url: "redis://r:6379", tls: true } }'), []);
  });

  test('none, or more than one, of url, sentinels and cluster is an error at stores.redis', () => {
    assert.deepEqual(problems('stores: { redis: { commandTimeout: 1s } }'), [
      'stores.redis: expected one of url, sentinels or cluster',
    ]);
    assert.deepEqual(problems('stores: { redis: { url: "redis://a:6379", cluster: ["a:6379"] } }'), [
      'stores.redis: expected one of url, sentinels or cluster',
    ]);
  });

  test('sentinels need name; name and the sentinel credentials need sentinels', () => {
    assert.deepEqual(problems('stores: { redis: { sentinels: ["127.0.0.1:26379"] } }'), [
      'stores.redis.name: sentinels need name (the master name they watch)',
    ]);
    assert.deepEqual(
      problems('stores: { redis: { url: "redis://a:6379", name: mymaster, sentinelPassword: x } }').sort(),
      [
        'stores.redis.name: name goes with sentinels',
        'stores.redis.sentinelPassword: sentinelPassword goes with sentinels',
      ],
    );
  });

  test('nodes are host:port, lists are not empty, tls is true or the TLS object', () => {
    assert.deepEqual(problems('stores: { redis: { cluster: ["10.0.0.1"] } }'), [
      'stores.redis.cluster[0]: expected host:port, such as 127.0.0.1:26379',
    ]);
    assert.deepEqual(problems('stores: { redis: { sentinels: ["a:70000"], name: m } }'), [
      'stores.redis.sentinels[0]: expected host:port, such as 127.0.0.1:26379',
    ]);
    assert.match(problems('stores: { redis: { cluster: [] } }').join('\n'), /^stores\.redis\.cluster: /);
    assert.match(
      problems('stores: { redis: { url: "redis://a:6379", tls: { cert: c.pem } } }').join('\n'),
      /stores\.redis\.tls/,
    );
    assert.match(problems('stores: { redis: { url: "redis://a:6379", pasword: x } }').join('\n'), /stores\.redis/);
  });
});

test('validate reads the tls files relative to the config file, and names a missing one at its key path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-redis-files-'));
  writeFileSync(join(dir, 'turnpike.yaml'), '');
  const text = config('stores: { redis: { url: "redis://r:6379", tls: { ca: redis-ca.pem } } }');
  const check = () => {
    try {
      loadConfigText(text, join(dir, 'turnpike.yaml'), { ...LOAD_OPTIONS, env: {}, configDir: dir });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.path}: ${p.code}`);
    }
  };
  assert.deepEqual(check(), ['stores.redis.tls.ca: TP_TLS_CONFIG']);
  writeFileSync(join(dir, 'redis-ca.pem'), 'not a certificate');
  assert.deepEqual(check(), ['stores.redis.tls.ca: TP_TLS_CONFIG']);
  copyFileSync(new TestPki().ca('Redis CA').certPath, join(dir, 'redis-ca.pem'));
  assert.deepEqual(check(), []);
});

test('GET /api/config redacts password, sentinelPassword and the tls key of stores.redis', () => {
  const loaded = load(
    config(`stores:
  redis:
    sentinels: ["10.0.0.1:26379"]
    name: mymaster
    password: redis-pass-1
    sentinelPassword: sentinel-pass-2
    tls: { cert: certs/c.pem, key: certs/private-key-3.pem }
`),
  );
  const shown = JSON.stringify(redactConfig(loaded, PLUGIN_SCHEMAS));
  for (const secret of ['redis-pass-1', 'sentinel-pass-2', 'private-key-3']) assert.ok(!shown.includes(secret), shown);
  assert.match(shown, /"name":"mymaster"/);
});

describe('the client each form builds', () => {
  const base = { connectTimeout: 1000, commandTimeout: 500 };

  test('url: a plain Redis with no offline queue and the command timeout', () => {
    const client = createRedisClient({ ...base, url: 'redis://127.0.0.1:1' });
    try {
      assert.ok(client instanceof Redis);
      assert.equal(client.options.enableOfflineQueue, false);
      assert.equal(client.options.commandTimeout, 500);
      assert.equal(client.options.enableAutoPipelining, true);
    } finally {
      client.disconnect();
    }
  });

  test('sentinels: a Redis that asks the sentinels, retries soon and drops a demoted master', () => {
    const client = createRedisClient({
      ...base,
      sentinels: ['127.0.0.1:1', '[::1]:2'],
      name: 'mymaster',
      password: 'p',
      sentinelPassword: 'sp',
    });
    client.on('error', () => {});
    try {
      assert.ok(client instanceof Redis);
      const o = client.options;
      assert.deepEqual(o.sentinels, [
        { host: '127.0.0.1', port: 1 },
        { host: '::1', port: 2 },
      ]);
      assert.equal(o.name, 'mymaster');
      assert.equal(o.password, 'p');
      assert.equal(o.sentinelPassword, 'sp');
      assert.equal(o.failoverDetector, false, "ioredis's detector can end the client during a reconnect");
      assert.equal(o.retryStrategy?.(100), 500, 'a master is looked for again at least every 500 ms');
      assert.equal(o.enableOfflineQueue, false);
      const reconnect = o.reconnectOnError as (err: Error) => boolean;
      assert.equal(reconnect(new Error("READONLY You can't write against a read only replica.")), true);
      assert.equal(reconnect(new Error('ERR unknown command')), false);
    } finally {
      client.disconnect();
    }
  });

  test('cluster: a Cluster whose nodes keep the store options', () => {
    const client = createRedisClient({
      ...base,
      cluster: ['127.0.0.1:1', '127.0.0.1:2'],
      username: 'u',
      password: 'p',
    });
    client.on('error', () => {});
    try {
      assert.ok(client instanceof Cluster);
      assert.equal(client.options.enableOfflineQueue, false);
      assert.equal(client.options.redisOptions?.commandTimeout, 500);
      assert.equal(client.options.redisOptions?.username, 'u');
      assert.equal(client.options.redisOptions?.password, 'p');
    } finally {
      client.disconnect();
    }
  });

  test('tls files are read relative to configDir; a missing one names its key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turnpike-redis-tls-'));
    writeFileSync(join(dir, 'ca.pem'), 'not really a CA');
    const settings: RedisSettings = {
      ...base,
      url: 'redis://127.0.0.1:1',
      tls: { ca: 'ca.pem', serverName: 'r.internal' },
      configDir: dir,
    };
    const client = createRedisClient(settings) as Redis;
    client.on('error', () => {});
    try {
      assert.equal(String(client.options.tls?.ca), 'not really a CA');
      assert.equal(client.options.tls?.servername, 'r.internal');
    } finally {
      client.disconnect();
    }
    assert.throws(
      () => createRedisClient({ ...settings, tls: { ca: 'missing.pem' } }),
      (err: unknown) =>
        err instanceof TurnpikeError && err.code === 'TP_TLS_CONFIG' && /stores\.redis\.tls\.ca/.test(err.message),
    );
  });

  test('RedisClients keeps one client while the settings stay, and replaces it when they change', () => {
    const clients = new RedisClients(() => {});
    try {
      const a = clients.get({ ...base, url: 'redis://127.0.0.1:1' });
      assert.equal(clients.get({ ...base, url: 'redis://127.0.0.1:1' }), a);
      const b = clients.get({ ...base, sentinels: ['127.0.0.1:1'], name: 'm' });
      assert.notEqual(b, a);
      a.disconnect();
    } finally {
      clients.close();
    }
  });
});
