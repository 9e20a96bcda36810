// DNS discovery below the runtime: what a DNS answer becomes (SRV priorities and weights, A and AAAA, the TTL
// floor), and the loop's rules (an empty answer within emptyGrace, a failing resolver keeps the last set), against
// a DNS server of the test's own on UDP port 0 and a manual clock.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, test } from 'node:test';
import { TargetSetApplier, type DiscoveredTarget } from '../../src/discovery/apply.ts';
import { resolveDns } from '../../src/discovery/dns.ts';
import { DiscoveryLoop } from '../../src/discovery/loop.ts';
import { CHANNELS, newGateway } from '../../src/observability/events.ts';
import { ManualClock } from '../helpers/clock.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';

let dns: DnsServer;
let resolver: Resolver;
before(async () => {
  dns = await startDnsServer();
  resolver = new Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([dns.address]);
});
after(() => dns.close());

describe('a DNS answer as a target set', () => {
  test('SRV: the lowest priority is primary, the others backups, weights kept, addresses from A and AAAA', async () => {
    dns.set('_http._tcp.orders.internal', [
      { type: 'SRV', target: 'o1.internal', port: 8081, priority: 10, weight: 3 },
      { type: 'SRV', target: 'o2.internal', port: 8082, priority: 10, weight: 1 },
      { type: 'SRV', target: 'o3.internal', port: 8083, priority: 20, weight: 0 },
    ]);
    dns.set('o1.internal', [{ type: 'A', address: '10.0.0.1', ttl: 30 }]);
    dns.set('o2.internal', [
      { type: 'A', address: '10.0.0.2', ttl: 12 },
      { type: 'AAAA', address: 'fd00::2', ttl: 40 },
    ]);
    dns.set('o3.internal', [{ type: 'A', address: '10.0.0.3', ttl: 60 }]);
    const r = await resolveDns(resolver, { srv: '_http._tcp.orders.internal' }, 'https');
    assert.deepEqual(r.targets, [
      { url: 'https://10.0.0.1:8081', weight: 3, backup: false },
      { url: 'https://10.0.0.2:8082', weight: 1, backup: false },
      { url: 'https://[fd00::2]:8082', weight: 1, backup: false },
      { url: 'https://10.0.0.3:8083', weight: 1, backup: true },
    ]);
    assert.equal(r.ttlMs, 12_000, "the lowest TTL of the SRV targets' addresses");
  });

  test('A and AAAA with the configured port; AAAA only when present; NXDOMAIN is an empty set', async () => {
    dns.set('users.internal', [
      { type: 'A', address: '10.0.1.1', ttl: 9 },
      { type: 'A', address: '10.0.1.2', ttl: 9 },
    ]);
    const r = await resolveDns(resolver, { a: 'users.internal', port: 8080 }, 'http');
    assert.deepEqual(
      r.targets.map((t) => t.url),
      ['http://10.0.1.1:8080', 'http://10.0.1.2:8080'],
    );
    assert.equal(r.ttlMs, 9000);
    dns.set('dual.internal', [
      { type: 'A', address: '10.0.1.3' },
      { type: 'AAAA', address: '::1' },
    ]);
    const dual = await resolveDns(resolver, { a: 'dual.internal', port: 80 }, 'http');
    assert.deepEqual(
      dual.targets.map((t) => t.url),
      ['http://10.0.1.3:80', 'http://[::1]:80'],
    );
    assert.deepEqual((await resolveDns(resolver, { a: 'gone.internal', port: 80 }, 'http')).targets, []);
    assert.deepEqual((await resolveDns(resolver, { srv: '_x._tcp.gone.internal' }, 'http')).targets, []);
  });

  test('SERVFAIL and silence are failures (they reject), not empty sets', async () => {
    dns.set('broken.internal', 'SERVFAIL');
    await assert.rejects(resolveDns(resolver, { a: 'broken.internal', port: 80 }, 'http'), { code: 'ESERVFAIL' });
    dns.set('silent.internal', 'DROP');
    await assert.rejects(resolveDns(resolver, { a: 'silent.internal', port: 80 }, 'http'), { code: 'ETIMEOUT' });
  });
});

/** A pool that records the run-time calls discovery makes. */
function fakePool() {
  const targets = new Map<string, { weight: number; backup: boolean }>();
  return {
    targets,
    addTarget(spec: { url: string; weight?: number; backup?: boolean }) {
      targets.set(spec.url, { weight: spec.weight ?? 1, backup: spec.backup ?? false });
    },
    drainTarget(url: string) {
      return targets.delete(url) ? Promise.resolve() : undefined;
    },
  };
}

const t = (url: string, weight = 1, backup = false): DiscoveredTarget => ({ url, weight, backup });

test('the applier adds new targets, updates changed weights and backups, drains those that left', () => {
  const pool = fakePool();
  const applier = new TargetSetApplier();
  assert.equal(applier.apply(pool, [t('http://10.0.0.1:80'), t('http://10.0.0.2:80', 2)]), true);
  assert.equal(applier.apply(pool, [t('http://10.0.0.1:80'), t('http://10.0.0.2:80', 2)]), false, 'same set');
  pool.addTarget({ url: 'http://10.9.9.9:80' }); // an operator's: not discovery's to remove
  applier.apply(pool, [t('http://10.0.0.2:80', 5, true), t('http://10.0.0.3:80')]);
  assert.deepEqual(Object.fromEntries(pool.targets), {
    'http://10.0.0.2:80': { weight: 5, backup: true },
    'http://10.9.9.9:80': { weight: 1, backup: false },
    'http://10.0.0.3:80': { weight: 1, backup: false },
  });
});

describe('the discovery loop', () => {
  function loop(
    answers: (() => Promise<{ targets: DiscoveredTarget[]; ttlMs?: number }>)[],
    clock: ManualClock,
    minRefreshMs = 5000,
  ) {
    const pool = fakePool();
    const warnings: object[] = [];
    const gateway = newGateway();
    const l = new DiscoveryLoop({
      upstream: 'orders',
      provider: 'dns',
      source: 'test',
      resolve: () => answers.shift()!(),
      pool: () => pool,
      clock,
      minRefreshMs,
      retryMs: 5000,
      emptyGraceMs: 30_000,
      gateway,
      log: { warn: (f) => warnings.push(f), info: () => {} },
    });
    return { l, pool, warnings, gateway };
  }
  const ok = (targets: DiscoveredTarget[], ttlMs?: number) => () => Promise.resolve({ targets, ttlMs });
  const fail = () => Promise.reject(Object.assign(new Error('queryA ESERVFAIL'), { code: 'ESERVFAIL' }));

  test('the TTL sets the next round, with minRefresh as its floor; no TTL: minRefresh', async () => {
    const clock = new ManualClock();
    const { l } = loop([ok([t('http://a:1')], 60_000), ok([t('http://a:1')], 1000), ok([t('http://a:1')])], clock);
    assert.equal(await l.refresh(), 60_000);
    assert.equal(await l.refresh(), 5000);
    assert.equal(await l.refresh(), 5000);
  });

  test('an empty answer empties a pool that had targets only once it has lasted emptyGrace', async () => {
    const clock = new ManualClock();
    const one = [t('http://a:1')];
    const { l, pool } = loop([ok(one), ok([]), ok([]), ok(one), ok([]), ok([])], clock);
    await l.refresh();
    assert.equal(await l.refresh(), 5000);
    clock.advance(29_000);
    assert.equal(await l.refresh(), 1000, 'asked again when the grace ends');
    assert.deepEqual([...pool.targets.keys()], ['http://a:1'], 'kept within the grace');
    await l.refresh(); // records again: the streak of empty answers ends
    clock.advance(29_000);
    await l.refresh();
    assert.deepEqual([...pool.targets.keys()], ['http://a:1'], 'a new streak has its own grace');
    clock.advance(30_000);
    await l.refresh();
    assert.deepEqual([...pool.targets.keys()], [], 'emptied once the grace has passed');
  });

  test('a watching source (minRefresh 0) that stays empty is emptied when the grace ends, its wait taken over', async () => {
    const clock = new ManualClock();
    let answer!: (r: { targets: DiscoveredTarget[] }) => void;
    const waiting = () => new Promise<{ targets: DiscoveredTarget[] }>((resolve) => (answer = resolve));
    const asked: number[] = [];
    const answers = [ok([t('http://a:1')]), ok([]), waiting];
    const { l, pool } = loop(
      answers.map((a, i) => () => (asked.push(i), a())),
      clock,
      0,
    );
    await l.refresh();
    assert.equal(await l.refresh(), 0, 'the empty answer: asked again at once');
    const round = l.refresh(); // the watch waits for a change that does not come
    await clock.whenPending(1, 'the grace timer');
    clock.advance(30_000);
    await round;
    assert.deepEqual([...pool.targets.keys()], [], 'emptied once the grace has passed');
    const next = l.refresh();
    answer({ targets: [t('http://b:1')] });
    await next;
    assert.deepEqual(asked, [0, 1, 2], 'the wait in progress is taken over, not asked twice');
    assert.deepEqual([...pool.targets.keys()], ['http://b:1']);
  });

  test('a failing resolver keeps the last set, warns once per streak and publishes each failure', async () => {
    const clock = new ManualClock();
    const { l, pool, warnings, gateway } = loop(
      [ok([t('http://a:1'), t('http://b:1')]), fail, fail, ok([t('http://a:1')]), fail],
      clock,
    );
    const events: { outcome: string; upstream: string }[] = [];
    const listen = (m: unknown) => {
      if ((m as { gateway: unknown }).gateway === gateway) events.push(m as { outcome: string; upstream: string });
    };
    CHANNELS.discovery.subscribe(listen);
    try {
      await l.refresh();
      assert.equal(await l.refresh(), 5000, 'a failure asks again after minRefresh');
      await l.refresh();
      assert.deepEqual([...pool.targets.keys()], ['http://a:1', 'http://b:1']);
      assert.equal(warnings.length, 1);
      await l.refresh();
      assert.deepEqual([...pool.targets.keys()], ['http://a:1']);
      await l.refresh();
      assert.equal(warnings.length, 2, 'a new streak warns again');
      assert.deepEqual(
        events.map((e) => e.outcome),
        ['resolved', 'error', 'error', 'resolved', 'error'],
      );
    } finally {
      CHANNELS.discovery.unsubscribe(listen);
    }
  });
});
