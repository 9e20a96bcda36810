// The dashboard's numbers (src/observability/dashboard-stats.ts) on a clock the test moves: per-route rate, error
// rate and percentiles over the last 5 minutes, old seconds falling out of the window, rate-limit decisions by
// route and consumer, the cache hit ratio, reloads and L4 sessions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DashboardStats, LATENCY_BOUNDS_MS, WINDOW_SECONDS } from '../../src/observability/dashboard-stats.ts';

function clocked() {
  let now = 1_700_000_000_000;
  const stats = new DashboardStats(() => now);
  return { stats, advance: (ms: number) => (now += ms) };
}

/** The bucket bound a latency is reported as. */
const bound = (ms: number) => LATENCY_BOUNDS_MS.find((b) => ms <= b)!;

test('per route: requests, 5xx share, p50 and p99 from the fixed histogram, the 10 s rate and the 60 s series', () => {
  const { stats } = clocked();
  for (let i = 0; i < 98; i++) stats.request('api', 200, 3);
  stats.request('api', 502, 3);
  stats.request('api', 200, 800);
  stats.request('web', 200, 1);
  const { routes } = stats.summary();
  assert.deepEqual(
    routes.map((r) => r.route),
    ['api', 'web'],
  );
  const api = routes[0]!;
  assert.equal(api.requests, 100);
  assert.equal(api.errorRate, 0.01);
  assert.equal(api.p50Ms, bound(3));
  assert.equal(api.p99Ms, bound(3));
  assert.equal(api.rps, 10);
  assert.equal(api.series.length, 60);
  assert.equal(api.series.at(-1), 100);
  stats.request('api', 200, 800);
  assert.equal(stats.summary().routes[0]!.p99Ms, bound(800));
});

test('seconds older than 5 minutes leave the window; a route with nothing left is not listed', () => {
  const { stats, advance } = clocked();
  stats.request('old', 200, 1);
  advance(1000);
  stats.request('api', 200, 1);
  advance((WINDOW_SECONDS - 1) * 1000);
  const s = stats.summary();
  assert.deepEqual(
    s.routes.map((r) => [r.route, r.requests, r.rps]),
    [['api', 1, 0]],
  );
  advance(1000);
  assert.deepEqual(stats.summary().routes, []);
});

test('a slot reused after a full turn of the ring starts from zero', () => {
  const { stats, advance } = clocked();
  stats.request('api', 500, 1);
  advance(WINDOW_SECONDS * 1000);
  stats.request('api', 200, 1);
  const api = stats.summary().routes[0]!;
  assert.equal(api.requests, 1);
  assert.equal(api.errorRate, 0);
});

test('rate-limit decisions by route and by consumer (anonymous without one), most limited first', () => {
  const { stats } = clocked();
  stats.rateLimit('api', 'alice', true);
  stats.rateLimit('api', 'alice', false);
  stats.rateLimit('api', null, true);
  stats.rateLimit('web', 'bob', false);
  stats.rateLimit('web', 'bob', false);
  const { byRoute, byConsumer } = stats.summary().rateLimits;
  assert.deepEqual(byRoute, [
    { key: 'web', allowed: 0, limited: 2 },
    { key: 'api', allowed: 2, limited: 1 },
  ]);
  assert.deepEqual(byConsumer, [
    { key: 'bob', allowed: 0, limited: 2 },
    { key: 'alice', allowed: 1, limited: 1 },
    { key: '(anonymous)', allowed: 1, limited: 0 },
  ]);
});

test('cache hit ratio: HIT, STALE and REVALIDATED are hits, MISS a miss, BYPASS neither', () => {
  const { stats } = clocked();
  assert.equal(stats.summary().cache.hitRatio, null);
  for (const s of ['HIT', 'HIT', 'STALE', 'REVALIDATED', 'MISS', 'BYPASS', 'BYPASS']) stats.cacheStatus(s);
  assert.deepEqual(stats.summary().cache, { hits: 4, misses: 1, hitRatio: 0.8 });
});

test('reloads newest first with their result; L4 sessions open, closed, errors and bytes per listener', () => {
  const { stats } = clocked();
  stats.reload(true, 2, null);
  stats.reload(false, 2, 'routes.0.upstream: no upstream "nope"');
  assert.deepEqual(
    stats.summary().reloads.map((r) => [r.ok, r.version, r.error]),
    [
      [false, 2, 'routes.0.upstream: no upstream "nope"'],
      [true, 2, undefined],
    ],
  );
  stats.l4Open('db', 'tcp');
  stats.l4Open('db', 'tcp');
  stats.l4Close({ listener: 'db', protocol: 'tcp', bytesIn: 10, bytesOut: 20, error: null });
  stats.l4Open('dns', 'udp');
  stats.l4Close({ listener: 'dns', protocol: 'udp', bytesIn: 1, bytesOut: 0, error: 'no target' });
  assert.deepEqual(stats.summary().l4, [
    { listener: 'db', protocol: 'tcp', open: 1, closed: 1, errors: 0, bytesIn: 10, bytesOut: 20 },
    { listener: 'dns', protocol: 'udp', open: 0, closed: 1, errors: 1, bytesIn: 1, bytesOut: 0 },
  ]);
});
