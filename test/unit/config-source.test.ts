// Where the config comes from, below the runtime: the source --config names (file, etcd://, redis://), its name in
// problems (no password), relative paths of a store config from the working directory, and the watches of a real
// etcd and a real redis-server (a change calls back once; an unreachable store is reported once).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ConfigError } from '../../src/config/loader.ts';
import { loadFromSource, openConfigSource } from '../../src/runtime/config-source/source.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import { tempDir } from '../helpers/servers.ts';

const VALID = `listeners: [{ name: web, protocol: http, port: 8080 }]
routes: [{ name: a, match: { path: / }, respond: { status: 200 } }]
accessLog: { output: logs/access.log }
`;

describe('choosing and naming a source', () => {
  test('a path is a file, etcd:// and redis:// are stores; a password never shows', () => {
    const file = openConfigSource('turnpike.yaml');
    assert.equal(file.file, 'turnpike.yaml');
    assert.equal(file.location, resolve('turnpike.yaml'));
    const etcd = openConfigSource('etcd://127.0.0.1:2379/turnpike/config');
    assert.equal(etcd.file, undefined);
    assert.equal(etcd.name, 'etcd://127.0.0.1:2379/turnpike/config');
    const redis = openConfigSource('redis://:s3cret@127.0.0.1:6379/0?key=turnpike:config');
    assert.equal(redis.name, 'redis://:***@127.0.0.1:6379/0?key=turnpike:config');
    assert.equal(redis.location, 'redis://:s3cret@127.0.0.1:6379/0?key=turnpike:config', 'workers get the real one');
  });

  test('a store URL without its key is refused, naming the form', () => {
    assert.throws(() => openConfigSource('redis://127.0.0.1:6379/0'), /\?key=KEY/);
    assert.throws(() => openConfigSource('etcd://127.0.0.1:2379'), /etcd:\/\/HOST:PORT\/KEY/);
  });

  test("a store config's problems name the URL, line and key path; its relative paths start at the cwd", () => {
    const source = openConfigSource('etcd://127.0.0.1:2379/turnpike/config');
    assert.throws(
      () => loadFromSource(source, VALID.replace('port: 8080', 'port: nope')),
      (err: ConfigError) =>
        err.problems[0]!.file === 'etcd://127.0.0.1:2379/turnpike/config' &&
        err.problems[0]!.line === 1 &&
        err.problems[0]!.path === 'listeners[0].port',
    );
    // `sub` is a folder in the working directory, not beside the file: the access log cannot be opened there.
    const cwd = tempDir();
    mkdirSync(join(cwd, 'sub'));
    const here = process.cwd();
    process.chdir(cwd);
    try {
      const text = VALID.replace('logs/access.log', 'sub');
      assert.throws(
        () => loadFromSource(source, text),
        (err: ConfigError) =>
          err.problems[0]!.code === 'TP_CONFIG_FILE' && err.problems[0]!.path === 'accessLog.output',
      );
      assert.equal(
        loadFromSource(openConfigSource(join(tempDir(), 'turnpike.yaml')), text).config.accessLog.output,
        'sub',
      );
    } finally {
      process.chdir(here);
    }
  });
});

describe('watching a store', () => {
  let etcd: EtcdServer;
  let redis: RedisServer;
  before(async () => {
    [etcd, redis] = await Promise.all([startEtcd(), startRedisServer()]);
  });
  after(() => Promise.all([etcd.stop(), redis.stop()]));

  test('etcd: read, then a change calls back once; a missing key is TP_CONFIG_NOT_FOUND', async () => {
    const source = openConfigSource(`etcd://127.0.0.1:${etcd.port}/cfg/a`);
    await assert.rejects(source.read(), (err: ConfigError) => err.problems[0]!.code === 'TP_CONFIG_NOT_FOUND');
    await etcd.put('/cfg/a', 'one');
    assert.equal(await source.read(), 'one');
    let changes = 0;
    const changed = new Promise<void>((r) =>
      source.watch(
        () => {
          changes++;
          r();
        },
        (err) => assert.fail(err),
      ),
    );
    await etcd.put('/cfg/a', 'two');
    await changed;
    assert.equal(await source.read(), 'two');
    assert.equal(changes, 1);
    source.close();
  });

  test('Redis: a change is seen by the poll; a stopped Redis is reported once', async () => {
    const client = new Redis(redis.url);
    await client.set('cfg', 'one');
    const source = openConfigSource(`redis://127.0.0.1:${redis.port}/0?key=cfg`);
    assert.equal(await source.read(), 'one');
    const errors: Error[] = [];
    let onChange = () => {};
    let onError = () => {};
    source.watch(
      () => onChange(),
      (err) => {
        errors.push(err);
        onError();
      },
    );
    await new Promise<void>((r) => {
      onChange = r;
      void client.set('cfg', 'two');
    });
    assert.equal(await source.read(), 'two');
    client.disconnect();
    await new Promise<void>((r) => {
      onError = r;
      void redis.stop();
    });
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /Redis 127\.0\.0\.1:\d+/);
    source.close();
  });
});
