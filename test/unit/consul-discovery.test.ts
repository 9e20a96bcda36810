// Consul discovery without a gateway: which instances an answer gives (passing, tags, address fallback, weights),
// the index rules of blocking queries, and the provider's rounds against the Consul stand-in (the first answers at
// once, the next waits in Consul for a change; an index that moves without a change is waited through).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { discoverySettings, discover } from '../../src/config/discovery-schema.ts';
import { consulPath, consulProvider, consulTargets, nextIndex } from '../../src/discovery/consul.ts';
import { startConsulStandIn } from '../helpers/consul-stand-in.ts';

const block = { service: 'search', tags: ['v2'] };
const entry = (o: { addr?: string; node?: string; port?: number; tags?: string[]; w?: number; checks?: string[] }) => ({
  Node: { Address: o.node ?? '10.0.0.9' },
  Service: {
    Address: o.addr ?? '',
    Port: o.port ?? 80,
    Tags: o.tags ?? ['v2'],
    ...(o.w !== undefined ? { Weights: { Passing: o.w } } : {}),
  },
  Checks: (o.checks ?? ['passing']).map((Status) => ({ Status })),
});

test('an answer gives the passing instances with every tag, at the service address else the node one', () => {
  const targets = consulTargets(
    [
      entry({ addr: '10.0.0.1', port: 8080, w: 5 }),
      entry({ port: 8081 }), // no service address: the node's
      entry({ addr: '10.0.0.3', checks: ['passing', 'critical'] }), // one failing check
      entry({ addr: '10.0.0.4', tags: ['v1'] }), // without the tag
      entry({ addr: 'fd00::5', w: 0 }),
      entry({ addr: '10.0.0.6', w: 5000, tags: ['v2', 'canary'] }),
    ],
    block,
    'https',
  );
  assert.deepEqual(targets, [
    { url: 'https://10.0.0.1:8080', weight: 5, backup: false },
    { url: 'https://10.0.0.9:8081', weight: 1, backup: false },
    { url: 'https://[fd00::5]:80', weight: 1, backup: false },
    { url: 'https://10.0.0.6:80', weight: 1000, backup: false },
  ]);
  assert.deepEqual(consulTargets([entry({ addr: '10.0.0.1' })], { service: 'search' }, 'http'), [
    { url: 'http://10.0.0.1:80', weight: 1, backup: false },
  ]);
  assert.throws(() => consulTargets({ error: 'x' }, block, 'http'), /other than a list/);
});

test('the index of the next query: as Consul says, reset when it goes back, never below 1, a failure when absent', () => {
  assert.equal(nextIndex(0, '42'), 42);
  assert.equal(nextIndex(42, '43'), 43);
  assert.equal(nextIndex(42, '42'), 42);
  assert.equal(nextIndex(42, '7'), 0, 'backwards: start over');
  assert.equal(nextIndex(0, '0'), 1, 'never below 1');
  assert.throws(() => nextIndex(5, undefined), /without an X-Consul-Index/);
  assert.throws(() => nextIndex(5, 'x'), /without an X-Consul-Index/);
});

test('the query: passing only, one tag parameter per tag, dc, and index with wait once there is an index', () => {
  assert.equal(
    consulPath({ service: 'search', tags: ['v2', 'eu'], dc: 'dc2' }, 0, 300_000),
    '/v1/health/service/search?passing=true&tag=v2&tag=eu&dc=dc2',
  );
  assert.equal(consulPath({ service: 'a b' }, 17, 300_000), '/v1/health/service/a%20b?passing=true&index=17&wait=300s');
});

test('the rounds: the first at once, then each when the set changes (an index moving alone is waited through)', async () => {
  const consul = await startConsulStandIn({ token: 's3cret' });
  const settings = discoverySettings.parse({ consul: { address: consul.address, token: 's3cret', wait: '1m' } });
  const resolve = consulProvider.create(settings, discover.parse({ consul: block }), { redis: () => undefined });
  const stop = new AbortController();
  try {
    consul.set('search', [
      { id: 'a', address: '127.0.0.1', port: 1001, tags: ['v2'] },
      { id: 'b', address: '127.0.0.1', port: 1002, tags: ['v1'] },
      { id: 'c', address: '127.0.0.1', port: 1003, tags: ['v2'], status: 'critical' },
    ]);
    assert.deepEqual((await resolve(stop.signal)).targets, [
      { url: 'http://127.0.0.1:1001', weight: 1, backup: false },
    ]);

    const next = resolve(stop.signal);
    await consul.whenBlocked(1);
    // b changes, but b lacks the tag: the index moves, the set does not; the provider waits on.
    consul.set('search', [
      { id: 'a', address: '127.0.0.1', port: 1001, tags: ['v2'] },
      { id: 'b', address: '127.0.0.1', port: 1009, tags: ['v1'] },
      { id: 'c', address: '127.0.0.1', port: 1003, tags: ['v2'], status: 'critical' },
    ]);
    await consul.whenBlocked(1);
    consul.set('search', [
      { id: 'a', address: '127.0.0.1', port: 1001, tags: ['v2'] },
      { id: 'c', address: '127.0.0.1', port: 1003, tags: ['v2'], weight: 3 },
    ]);
    assert.deepEqual((await next).targets, [
      { url: 'http://127.0.0.1:1001', weight: 1, backup: false },
      { url: 'http://127.0.0.1:1003', weight: 3, backup: false },
    ]);
    const asked = consul.requests.map((r) => [r.url.searchParams.get('index'), r.url.searchParams.get('wait')]);
    assert.deepEqual(asked, [
      [null, null],
      ['11', '60s'],
      ['12', '60s'],
    ]);
    assert.ok(consul.requests.every((r) => r.token === 's3cret' && r.url.searchParams.getAll('tag').join() === 'v2'));

    // The index goes back (a restore): the next query starts over from none, then blocks again.
    const after = resolve(stop.signal);
    await consul.whenBlocked(1);
    consul.setIndex(5);
    await consul.whenBlocked(1);
    assert.deepEqual(
      consul.requests.slice(-2).map((r) => r.url.searchParams.get('index')),
      [null, '5'],
    );
    // The loop stopping ends the blocked query.
    stop.abort();
    await assert.rejects(after);
  } finally {
    stop.abort();
    await consul.close();
  }
});

test('an empty token sends no X-Consul-Token; a refused token is a failure, and the next round answers at once', async () => {
  const consul = await startConsulStandIn({ token: 'right' });
  const stop = new AbortController();
  try {
    consul.set('search', [{ id: 'a', address: '127.0.0.1', port: 1001, tags: ['v2'] }]);
    const make = (token: string) =>
      consulProvider.create(
        discoverySettings.parse({ consul: { address: consul.address, token } }),
        discover.parse({ consul: block }),
        { redis: () => undefined },
      );
    await assert.rejects(make('')(stop.signal), /Consul answered 403: ACL not found/);
    assert.equal(consul.requests[0]!.token, undefined);
    await assert.rejects(make('wrong')(stop.signal), /403/);
  } finally {
    stop.abort();
    await consul.close();
  }
});
