// CachePurges.purgeEverywhere (the admin API's purge) against a real redis-server: memory and Redis counts add up,
// two workers purging one Redis at once count each entry once, and a Redis that fails makes the purge reject with
// TP_STORE_UNAVAILABLE.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import CachePolicy from 'http-cache-semantics';
import type { Redis } from 'ioredis';
import { MemoryCacheStore } from '../../src/cache/memory-store.ts';
import { CachePurges } from '../../src/cache/purge-fanout.ts';
import { RedisCacheStore } from '../../src/cache/redis-store.ts';
import type { CacheEntry, CacheStore } from '../../src/cache/store.ts';
import { TurnpikeError } from '../../src/errors.ts';
import { RedisClients } from '../../src/stores/redis-client.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';

function entry(): CacheEntry {
  const headers = { 'cache-control': 'max-age=60' };
  const policy = new CachePolicy(
    { method: 'GET', url: '/a', headers: { host: 'x' } },
    { status: 200, headers },
    { shared: true },
  );
  return { policy, status: 200, headers, body: Buffer.from('x'), encodedBy: null };
}

async function fill(store: CacheStore, urlKeys: readonly string[]): Promise<void> {
  await Promise.all(urlKeys.map((k) => store.store(k, [], '', entry(), 60_000)));
}

const byPrefix = (path: string, host?: string) => ({ path, query: '', prefix: true, ...(host ? { host } : {}) });

describe('CachePurges.purgeEverywhere with Redis stores', () => {
  let redis: RedisServer;
  const holders: RedisClients[] = [];
  let client: Redis;

  async function connect(): Promise<Redis> {
    const holder = new RedisClients(() => {}); // errors are expected once Redis is stopped
    holders.push(holder);
    const c = holder.get({ url: redis.url, connectTimeout: 1000, commandTimeout: 500 });
    if (c.status !== 'ready') await once(c, 'ready');
    return c;
  }
  const redisStore = (c: Redis | undefined, namespace: string) =>
    new RedisCacheStore(() => c, { namespace, onError: () => {} });

  before(async () => {
    redis = await startRedisServer();
    client = await connect();
  });
  after(async () => {
    for (const h of holders) h.close();
    await redis?.stop();
  });

  test('memory and Redis counts add up; host and path decide, as for the memory caches', async () => {
    const purges = new CachePurges(null);
    const memory = new MemoryCacheStore(1_000_000);
    purges.register('mem', memory);
    const shared = redisStore(client, 'sum');
    await fill(memory, ['a.test/c/1', 'b.test/c/1']);
    await fill(shared, ['a.test/c/2', 'a.test/c/3?x=1', '/c/4', 'a.test/d/c/5', 'b.test/c/6']);
    assert.equal(await purges.purgeEverywhere(byPrefix('/c/', 'a.test'), [shared]), 4, 'mem 1, Redis 3');
    assert.equal(await purges.purgeEverywhere(byPrefix('/c/'), [shared]), 2, 'the other host: mem 1, Redis 1');
    const url = { host: 'a.test', path: '/d/c/5', query: '', prefix: false };
    assert.equal(await purges.purgeEverywhere(url, [shared]), 1);
    assert.deepEqual(await client.keys('tp:cache:sum:*'), []);
  });

  test('two workers purging one Redis at once count every entry once', async () => {
    const urls = Array.from({ length: 1500 }, (_, i) => `h.test/many/${i}`);
    await fill(redisStore(client, 'workers'), urls);
    const other = await connect();
    const [one, two] = [new CachePurges(null), new CachePurges(null)];
    const counts = await Promise.all([
      one.purgeEverywhere(byPrefix('/many/'), [redisStore(client, 'workers')]),
      two.purgeEverywhere(byPrefix('/many/'), [redisStore(other, 'workers')]),
    ]);
    assert.equal(counts[0]! + counts[1]!, urls.length, `counts ${counts.join(' + ')}`);
    assert.deepEqual(await client.keys('tp:cache:workers:*'), []);
  });

  test('a Redis store that fails rejects with TP_STORE_UNAVAILABLE; the memory caches are purged anyway', async () => {
    const purges = new CachePurges(null);
    const memory = new MemoryCacheStore(1_000_000);
    purges.register('mem', memory);
    await fill(memory, ['a.test/f/1']);
    await assert.rejects(
      purges.purgeEverywhere(byPrefix('/f/'), [redisStore(client, 'ok'), redisStore(undefined, 'none')]),
      (err: unknown) => err instanceof TurnpikeError && err.code === 'TP_STORE_UNAVAILABLE',
    );
    assert.equal(memory.stats().entries, 0);

    redis.process.kill('SIGSTOP'); // connection open, no answers: the command timeout
    try {
      await assert.rejects(
        purges.purgeEverywhere(byPrefix('/f/'), [redisStore(client, 'frozen')]),
        (err: unknown) => err instanceof TurnpikeError && err.code === 'TP_STORE_UNAVAILABLE',
      );
    } finally {
      redis.process.kill('SIGCONT');
    }
  });
});
