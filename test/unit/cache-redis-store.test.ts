// The Redis cache store against a real redis-server: the entry codec, variants, expiry, purges (glob characters
// matched literally), namespaces, two instances sharing one Redis, and a Redis that is frozen, killed or absent.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import CachePolicy from 'http-cache-semantics';
import type { Redis } from 'ioredis';
import { policyClass } from '../../src/cache/freshness.ts';
import { decodeEntry, encodeEntry, RedisCacheStore } from '../../src/cache/redis-store.ts';
import type { CacheEntry } from '../../src/cache/store.ts';
import { RedisClients } from '../../src/stores/redis-client.ts';
import { ManualClock } from '../helpers/clock.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';

const COMMAND_TIMEOUT = 500;

function entry(body: Buffer | string, options: { status?: number; encodedBy?: string | null } = {}): CacheEntry {
  const cacheControl = 'max-age=60';
  const policy = new CachePolicy(
    { method: 'GET', url: '/a', headers: { host: 'x' } },
    { status: options.status ?? 200, headers: { 'cache-control': cacheControl } },
    { shared: true },
  );
  const headers = {
    'cache-control': cacheControl,
    'content-type': 'text/plain',
    link: ['</a.css>; rel=preload', '</b.js>; rel=preload'],
  };
  return {
    policy,
    status: options.status ?? 200,
    headers,
    body: Buffer.from(body),
    encodedBy: options.encodedBy ?? null,
  };
}

/** A client as the gateway makes one (src/stores/redis-client.ts), connected. */
async function connect(clients: RedisClients[], url: string): Promise<Redis> {
  const holder = new RedisClients(() => {}); // connection errors are expected once Redis is stopped
  clients.push(holder);
  const client = holder.get({ url, connectTimeout: 1000, commandTimeout: COMMAND_TIMEOUT });
  if (client.status !== 'ready') await once(client, 'ready');
  return client;
}

function newStore(client: Redis | undefined, namespace: string, errors: Error[] = []): RedisCacheStore {
  return new RedisCacheStore(() => client, { namespace, onError: (err) => errors.push(err) });
}

const plain = () => '';
const byEncoding = (encoding: string) => (fields: readonly string[]) => {
  assert.deepEqual(fields, ['accept-encoding']);
  return `accept-encoding=${encoding}`;
};

describe('cache entry codec', () => {
  test('decodeEntry(encodeEntry(e)) gives back status, headers, body bytes, encodedBy and a working policy', () => {
    const body = randomBytes(4096);
    const decoded = decodeEntry(encodeEntry(entry(body, { status: 203, encodedBy: 'br' })));
    assert.equal(decoded.status, 203);
    assert.deepEqual(decoded.headers, entry('').headers);
    assert.ok(decoded.body.equals(body));
    assert.equal(decoded.encodedBy, 'br');
    assert.equal(decoded.policy.stale(), false);
    assert.ok(decoded.policy.timeToLive() > 59_000);
  });

  test("an entry read back with a clock's policy class ages on that clock, also once a 304 revalidated it", () => {
    const clock = new ManualClock();
    const Policy = policyClass(clock);
    const request = { method: 'GET', url: '/a', headers: { host: 'x' } };
    const stored = new Policy(request, { status: 200, headers: { 'cache-control': 'max-age=60' } }, { shared: true });
    clock.advance(30_000);
    const decoded = decodeEntry(encodeEntry({ ...entry('x'), policy: stored }), Policy);
    assert.equal(decoded.policy.age(), 30);
    clock.advance(31_000);
    assert.equal(decoded.policy.stale(), true, '61 s on the clock: past max-age=60');
    const { policy: revalidated } = decoded.policy.revalidatedPolicy(request, {
      status: 304,
      headers: { 'cache-control': 'max-age=60' },
    });
    assert.equal(revalidated.stale(), false);
    clock.advance(61_000);
    assert.equal(revalidated.stale(), true, 'the revalidated policy reads the same clock');
    assert.equal(policyClass(clock), Policy, 'one class per clock');
  });

  test('decodeEntry throws on foreign, truncated and malformed values', () => {
    const good = encodeEntry(entry('x'));
    assert.throws(() => decodeEntry(Buffer.from('not an entry')));
    assert.throws(() => decodeEntry(good.subarray(0, 20)), /truncated/);
    assert.throws(() => decodeEntry(Buffer.alloc(0)));
    const meta = Buffer.from('{"s":"200"}');
    const head = Buffer.from([1, 0, 0, 0, meta.length]);
    assert.throws(() => decodeEntry(Buffer.concat([head, meta])), /malformed/);
  });
});

describe('RedisCacheStore with a running Redis', () => {
  let redis: RedisServer;
  const clients: RedisClients[] = [];
  let client: Redis;

  before(async () => {
    redis = await startRedisServer();
    client = await connect(clients, redis.url);
  });
  after(async () => {
    for (const c of clients) c.close();
    await redis?.stop();
  });

  test('store then lookup returns the same status, headers, body bytes, encodedBy and a policy that still answers', async () => {
    const errors: Error[] = [];
    const store = newStore(client, 'roundtrip', errors);
    const body = randomBytes(256 * 1024); // binary, not UTF-8
    await store.store('host/a', [], '', entry(body, { encodedBy: 'gzip' }), 60_000);
    const hit = await store.lookup('host/a', plain);
    assert.ok(hit);
    assert.equal(hit.status, 200);
    assert.deepEqual(hit.headers, entry('').headers);
    assert.ok(hit.body.equals(body));
    assert.equal(hit.encodedBy, 'gzip');
    assert.equal(hit.policy.stale(), false);
    assert.equal(await store.lookup('host/missing', plain), undefined);
    assert.deepEqual(errors, []);
    const keys = await client.keys('*roundtrip*');
    assert.deepEqual(keys.sort(), [
      'tp:cache:roundtrip:s:{host/a}',
      'tp:cache:roundtrip:u:{host/a}',
      'tp:cache:roundtrip:v:{host/a}\n',
    ]);
    assert.deepEqual(store.stats(), { entries: 0, bytes: 0 });
  });

  test('variants of one URL are separate, and variantOf sees the recorded Vary fields', async () => {
    const store = newStore(client, 'variants');
    await store.store(
      'host/v',
      ['accept-encoding'],
      'accept-encoding=br',
      entry('brotli', { encodedBy: 'br' }),
      60_000,
    );
    await store.store(
      'host/v',
      ['accept-encoding'],
      'accept-encoding=gzip',
      entry('gzip', { encodedBy: 'gzip' }),
      60_000,
    );
    assert.equal((await store.lookup('host/v', byEncoding('br')))?.body.toString(), 'brotli');
    assert.equal((await store.lookup('host/v', byEncoding('gzip')))?.body.toString(), 'gzip');
    assert.equal(await store.lookup('host/v', byEncoding('zstd')), undefined);
  });

  test('the URL record lives as long as its longest-lived variant (a shorter ttl never shortens it)', async () => {
    const store = newStore(client, 'record-ttl');
    await store.store('host/r', ['accept-encoding'], 'accept-encoding=br', entry('long'), 60_000);
    await store.store('host/r', ['accept-encoding'], 'accept-encoding=gzip', entry('short'), 200);
    for (const key of ['tp:cache:record-ttl:u:{host/r}', 'tp:cache:record-ttl:s:{host/r}']) {
      const pttl = await client.pttl(key);
      assert.ok(pttl > 59_000 && pttl <= 60_000, `${key} pttl ${pttl}`);
    }
    const short = await client.pttl('tp:cache:record-ttl:v:{host/r}\naccept-encoding=gzip');
    assert.ok(short > 0 && short <= 200, `entry pttl ${short}`);
  });

  test('an entry expires after its ttl', async () => {
    const store = newStore(client, 'expiry');
    await store.store('host/e', [], '', entry('soon gone'), 200);
    assert.equal((await store.lookup('host/e', plain))?.body.toString(), 'soon gone');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(await store.lookup('host/e', plain), undefined);
    assert.deepEqual(await client.keys('tp:cache:expiry:*'), [], 'record and set expire with it');
  });

  test('purge removes every variant of one URL and returns the count; another URL survives', async () => {
    const store = newStore(client, 'purge');
    for (const enc of ['br', 'gzip', 'zstd']) {
      await store.store('host/p', ['accept-encoding'], `accept-encoding=${enc}`, entry(enc), 60_000);
    }
    await store.store('host/p2', [], '', entry('other'), 60_000);
    assert.equal(await store.purge('host/p'), 3);
    for (const enc of ['br', 'gzip', 'zstd']) assert.equal(await store.lookup('host/p', byEncoding(enc)), undefined);
    assert.equal((await store.lookup('host/p2', plain))?.body.toString(), 'other');
    assert.deepEqual((await client.keys('tp:cache:purge:*')).sort(), [
      'tp:cache:purge:s:{host/p2}',
      'tp:cache:purge:u:{host/p2}',
      'tp:cache:purge:v:{host/p2}\n',
    ]);
    assert.equal(await store.purge('host/p'), 0, 'nothing left the second time');
  });

  test('purgePrefix removes every URL under the prefix, matching glob characters literally', async () => {
    const store = newStore(client, 'prefix');
    const urls = [
      'host/catalog/a',
      'host/catalog/b?page=2',
      'host/catalogue',
      'host/[x]*/1',
      'host/[x]*/2',
      'host/x/1',
      'host/?x]*/1',
      'other/catalog/a',
    ];
    for (const url of urls) await store.store(url, [], '', entry(url), 60_000);
    await store.store('host/catalog/a', ['accept-encoding'], 'accept-encoding=br', entry('a br'), 60_000);

    assert.equal(await store.purgePrefix('host/catalog/'), 3, 'two variants of /a and one of /b');
    assert.equal(await store.purgePrefix('host/[x]*/'), 2);
    const left = [];
    for (const url of urls) if ((await store.lookup(url, plain)) !== undefined) left.push(url);
    assert.deepEqual(left, ['host/catalogue', 'host/x/1', 'host/?x]*/1', 'other/catalog/a']);
    assert.equal(await store.purgePrefix('nothing/'), 0);
  });

  test('purgePrefix walks many URLs across several SCAN pages', async () => {
    const store = newStore(client, 'many');
    await Promise.all(
      Array.from({ length: 1200 }, (_, i) => store.store(`host/bulk/${i}`, [], '', entry('x'), 60_000)),
    );
    await store.store('host/kept', [], '', entry('kept'), 60_000);
    assert.equal(await store.purgePrefix('host/bulk/'), 1200);
    assert.deepEqual(await client.keys('tp:cache:many:u:*'), ['tp:cache:many:u:{host/kept}']);
  });

  test('purgeMatching purges every variant of the URLs the predicate passes; contains narrows the SCAN, literally', async () => {
    const store = newStore(client, 'match*');
    const urls = ['host/[c]*/a', 'host/[c]*/b?q=1', 'other/[c]*/a', 'host/x/[c]*/a', 'host/ca/a'];
    for (const url of urls) await store.store(url, [], '', entry(url), 60_000);
    await store.store('host/[c]*/a', ['accept-encoding'], 'accept-encoding=br', entry('br'), 60_000);
    const asked: string[] = [];
    const test = (urlKey: string) => {
      asked.push(urlKey);
      return urlKey.startsWith('host/[c]*/');
    };
    assert.equal(await store.purgeMatching(test, '/[c]*/'), 3, 'two variants of /a and one of /b');
    assert.deepEqual(asked.sort(), ['host/[c]*/a', 'host/[c]*/b?q=1', 'host/x/[c]*/a', 'other/[c]*/a']);
    const left = [];
    for (const url of urls) if ((await store.lookup(url, plain)) !== undefined) left.push(url);
    assert.deepEqual(left, ['other/[c]*/a', 'host/x/[c]*/a', 'host/ca/a']);
    assert.equal(await store.purgeMatching(() => true), 3, 'without contains: every URL of the namespace');
    assert.equal(await store.purgeMatching(() => true), 0);
  });

  test('stores with different namespaces do not see or purge each other’s entries (glob characters in a namespace too)', async () => {
    const a = newStore(client, 'route*');
    const b = newStore(client, 'routeB');
    await a.store('host/n', [], '', entry('from a'), 60_000);
    await b.store('host/n', [], '', entry('from b'), 60_000);
    assert.equal((await a.lookup('host/n', plain))?.body.toString(), 'from a');
    assert.equal((await b.lookup('host/n', plain))?.body.toString(), 'from b');
    assert.equal(await a.purgePrefix('host/'), 1);
    assert.equal(await a.lookup('host/n', plain), undefined);
    assert.equal((await b.lookup('host/n', plain))?.body.toString(), 'from b');
    assert.equal(await newStore(client, 'routeC').lookup('host/n', plain), undefined);
  });

  test('two store instances on two clients (two gateway instances) with one namespace share entries and purges', async () => {
    const other = await connect(clients, redis.url);
    const one = newStore(client, 'shared');
    const two = newStore(other, 'shared');
    await one.store('host/s', ['accept-encoding'], 'accept-encoding=br', entry('shared', { encodedBy: 'br' }), 60_000);
    const hit = await two.lookup('host/s', byEncoding('br'));
    assert.equal(hit?.body.toString(), 'shared');
    assert.equal(hit?.encodedBy, 'br');
    assert.equal(await two.purge('host/s'), 1);
    assert.equal(await one.lookup('host/s', byEncoding('br')), undefined);
  });

  test('a corrupt entry or record reads as a miss and is reported', async () => {
    const errors: Error[] = [];
    const store = newStore(client, 'corrupt', errors);
    await client.set('tp:cache:corrupt:u:{host/bad-entry}', '[]');
    await client.set('tp:cache:corrupt:v:{host/bad-entry}\n', Buffer.from([1, 0xff, 0xff, 0xff, 0xff, 0]));
    await client.set('tp:cache:corrupt:u:{host/bad-record}', '{not json');
    assert.equal(await store.lookup('host/bad-entry', plain), undefined);
    assert.equal(await store.lookup('host/bad-record', plain), undefined);
    assert.equal(errors.length, 2);
  });
});

describe('RedisCacheStore without a working Redis', () => {
  let redis: RedisServer;
  const clients: RedisClients[] = [];
  let client: Redis;

  before(async () => {
    redis = await startRedisServer();
    client = await connect(clients, redis.url);
  });
  after(async () => {
    for (const c of clients) c.close();
    await redis?.stop();
  });

  /** lookup, store and purge against the store; lookup and store must settle quietly, purge must reject. */
  async function exercise(store: RedisCacheStore, errors: Error[]): Promise<{ lookupMs: number }> {
    const started = performance.now();
    assert.equal(await store.lookup('host/down', plain), undefined);
    const lookupMs = performance.now() - started;
    assert.equal(errors.length, 1, 'lookup reported its failure');
    await store.store('host/down', [], '', entry('x'), 60_000); // resolves
    assert.equal(errors.length, 2, 'store reported its failure');
    await assert.rejects(store.purge('host/down'));
    await assert.rejects(store.purgePrefix('host/'));
    await assert.rejects(store.purgeMatching(() => true, '/'));
    assert.equal(errors.length, 5, 'purges reported their failures');
    return { lookupMs };
  }

  test('with no client, lookup misses, store resolves and purges reject', async () => {
    const errors: Error[] = [];
    await exercise(newStore(undefined, 'none', errors), errors);
  });

  test('with Redis frozen, lookup misses within the command timeout, store resolves and purges reject', async (t) => {
    const errors: Error[] = [];
    const store = newStore(client, 'down', errors);
    await store.store('host/down', [], '', entry('x'), 60_000);
    assert.ok(await store.lookup('host/down', plain), 'healthy first');
    redis.process.kill('SIGSTOP'); // connection open, no answers: the timeout path
    try {
      const { lookupMs } = await exercise(store, errors);
      t.diagnostic(`frozen Redis: lookup missed in ${lookupMs.toFixed(0)} ms`);
      assert.ok(lookupMs < 1000, `lookup took ${lookupMs} ms`);
    } finally {
      redis.process.kill('SIGCONT');
    }
  });

  test('with Redis stopped, lookup misses at once, store resolves and purges reject', async (t) => {
    const errors: Error[] = [];
    const store = newStore(client, 'down', errors);
    redis.process.kill('SIGKILL');
    await once(redis.process, 'exit');
    const { lookupMs } = await exercise(store, errors);
    t.diagnostic(`stopped Redis: lookup missed in ${lookupMs.toFixed(1)} ms`);
    assert.ok(lookupMs < 500, `lookup took ${lookupMs} ms`);
  });
});
