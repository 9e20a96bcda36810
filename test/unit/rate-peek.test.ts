// RateStore.peek (turnpike explain): what consume would decide now, read without counting, in memory and in Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcraConsume, gcraPeek } from '../../src/limits/gcra.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import { RedisRateStore } from '../../src/limits/redis-rate-store.ts';
import { RedisClients } from '../../src/stores/redis-client.ts';
import { startRedisServer } from '../helpers/redis.ts';

test('peek says what the next request finds (itself included) and counts nothing', () => {
  let now = 1_000_000;
  const store = new MemoryLimitStore({ now: () => now, sweepIntervalMs: 0 });
  const limits = [
    { requests: 3, per: 1000 },
    { requests: 10, per: 60_000 },
  ];
  const fresh = store.peek('k', limits);
  assert.deepEqual([fresh.allowed, fresh.remaining], [true, [3, 10]]);
  assert.equal(store.rateKeys, 0, 'a peek at an unknown key creates no counter');
  store.consume('k', limits);
  for (let i = 0; i < 5; i++) assert.deepEqual(store.peek('k', limits).remaining, [2, 9], 'peeks count nothing');
  assert.deepEqual(store.consume('k', limits).remaining, [1, 8], 'the next consume is as if no peek happened');
  store.consume('k', limits);
  const out = store.peek('k', limits);
  assert.deepEqual([out.allowed, out.remaining, out.retryAfterMs], [false, [0, 7], 334]);
  assert.equal(store.consume('k', limits).allowed, false, 'peek said denied, and consume denies');
  now += 334_000;
  assert.deepEqual([store.peek('k', limits).allowed, store.peek('k', limits).remaining[0]], [true, 1]);
  store.close();
});

test('gcraPeek agrees with gcraConsume at every step of a burst and leaves the TATs alone', () => {
  const limits = [{ requests: 5, per: 10_000 }];
  const tats: number[] = [];
  for (let i = 0; i < 7; i++) {
    const before = [...tats];
    const peek = gcraPeek(tats, 0, limits);
    assert.deepEqual(tats, before, 'peek writes nothing');
    const d = gcraConsume(tats, 0, limits);
    assert.equal(peek.allowed, d.allowed, `request ${i + 1}`);
    if (d.allowed) assert.equal(peek.remaining[0], d.remaining[0]! + 1, 'peek counts this request as still left');
    else assert.equal(peek.retryAfterMs, d.retryAfterMs);
  }
});

test('the Redis store peeks with a read-only script: counters unchanged, an unknown key left uncreated', async () => {
  const redis = await startRedisServer();
  const clients = new RedisClients(() => {});
  try {
    const client = clients.get({ url: redis.url, connectTimeout: 2000, commandTimeout: 2000 });
    const store = new RedisRateStore(client);
    const limits = [{ requests: 3, per: 60_000 }];
    assert.deepEqual((await store.peek('k', limits)).remaining, [3]);
    assert.equal(await client.exists('turnpike:rl:k'), 0, 'a peek creates no key');
    await store.consume('k', limits);
    const stored = await client.get('turnpike:rl:k');
    for (let i = 0; i < 3; i++) assert.deepEqual((await store.peek('k', limits)).remaining, [2]);
    assert.equal(await client.get('turnpike:rl:k'), stored, 'peeks write nothing');
    assert.deepEqual((await store.consume('k', limits)).remaining, [1]);
  } finally {
    clients.close();
    await redis.stop();
  }
});
