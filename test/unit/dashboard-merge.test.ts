// The dashboard with workers (src/observability/dashboard-summary.ts, src/admin/merge-ops.ts): each worker's raw
// data (counts and latency histogram buckets) is summed, and p50/p99 come from the summed histograms, never from
// the workers' own percentiles; series line up on the newest second; decisions, cache, L4 sessions add up; a
// reload every worker lists shows once; a target unhealthy in any worker shows unhealthy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DashboardAnswer, TargetView, UpstreamView } from '../../src/admin/admin-ops.ts';
import { mergeDashboard } from '../../src/admin/merge-ops.ts';
import { DashboardStats, LATENCY_BOUNDS_MS } from '../../src/observability/dashboard-stats.ts';
import { mergeDashboardRaw, summarizeDashboard } from '../../src/observability/dashboard-summary.ts';

const T0 = 1_700_000_000_000;

function worker(start = T0) {
  let now = start;
  const stats = new DashboardStats(() => now);
  return { stats, advance: (ms: number) => (now += ms) };
}

/** The bucket bound a latency is reported as. */
const bound = (ms: number) => LATENCY_BOUNDS_MS.find((b) => ms <= b)!;

test('p50 and p99 come from the summed histograms, not from either worker percentiles', () => {
  const a = worker();
  const b = worker();
  // api: a alone has p99 at 50 ms (2 of 100); summed, 2 of 200 are slow, so p99 is the 3 ms bucket.
  for (let i = 0; i < 98; i++) a.stats.request('api', 200, 3);
  for (let i = 0; i < 2; i++) a.stats.request('api', 503, 50);
  for (let i = 0; i < 100; i++) b.stats.request('api', 200, 3);
  // web: b alone has p50 at 800 ms; summed (30 fast, 25 slow), the median is fast and p99 slow.
  for (let i = 0; i < 30; i++) a.stats.request('web', 200, 1);
  for (let i = 0; i < 25; i++) b.stats.request('web', 200, 800);
  assert.equal(a.stats.summary().routes[0]!.p99Ms, bound(50));
  assert.equal(b.stats.summary().routes[1]!.p50Ms, bound(800));

  const merged = summarizeDashboard(mergeDashboardRaw([a.stats.raw(), b.stats.raw()]));
  assert.deepEqual(
    merged.routes.map((r) => [r.route, r.requests, r.errorRate, r.p50Ms, r.p99Ms, r.rps]),
    [
      ['api', 200, 0.01, bound(3), bound(3), 20],
      ['web', 55, 0, bound(1), bound(800), 5.5],
    ],
  );
});

test('one process summarises through the same merge: its summary is the summary of its raw data', () => {
  const a = worker();
  for (let i = 0; i < 10; i++) a.stats.request('api', i === 0 ? 500 : 200, i * 10);
  a.stats.cacheStatus('HIT');
  assert.deepEqual(a.stats.summary(), summarizeDashboard(mergeDashboardRaw([a.stats.raw()])));
});

test('series line up on the newest second when workers read a second apart', () => {
  const a = worker();
  const b = worker(T0 + 1000);
  a.stats.request('api', 200, 1);
  b.stats.request('api', 200, 1);
  b.stats.request('api', 200, 1);
  const [api] = summarizeDashboard(mergeDashboardRaw([a.stats.raw(), b.stats.raw()])).routes;
  assert.deepEqual(api!.series.slice(-3), [0, 1, 2]);
  assert.equal(api!.requests, 3);
});

test('decisions, cache outcomes and L4 sessions add up; a reload every worker lists shows once', () => {
  const a = worker();
  const b = worker();
  a.stats.rateLimit('api', 'alice', true);
  b.stats.rateLimit('api', 'alice', false);
  b.stats.rateLimit('api', 'bob', false);
  a.stats.cacheStatus('HIT');
  b.stats.cacheStatus('HIT');
  b.stats.cacheStatus('MISS');
  a.stats.l4Open('db', 'tcp');
  b.stats.l4Open('db', 'tcp');
  b.stats.l4Open('db', 'tcp');
  b.stats.l4Close({ listener: 'db', protocol: 'tcp', bytesIn: 5, bytesOut: 7, error: null });
  for (const w of [a, b]) w.stats.reload(true, 2, null);
  b.advance(1000);
  b.stats.reload(false, 2, 'bad config'); // refused in one worker only
  const s = summarizeDashboard(mergeDashboardRaw([a.stats.raw(), b.stats.raw()]));
  assert.deepEqual(s.rateLimits.byRoute, [{ key: 'api', allowed: 1, limited: 2 }]);
  assert.deepEqual(s.rateLimits.byConsumer, [
    { key: 'alice', allowed: 1, limited: 1 },
    { key: 'bob', allowed: 0, limited: 1 },
  ]);
  assert.deepEqual(s.cache, { hits: 2, misses: 1, hitRatio: 2 / 3 });
  assert.deepEqual(s.l4, [{ listener: 'db', protocol: 'tcp', open: 2, closed: 1, errors: 0, bytesIn: 5, bytesOut: 7 }]);
  assert.deepEqual(
    s.reloads.map((r) => [r.ok, r.version, r.error]),
    [
      [false, 2, 'bad config'],
      [true, 2, undefined],
    ],
  );
});

test('upstream targets: unhealthy in any worker shows unhealthy, in-flight summed, breaker the worst', () => {
  const target = (t: Partial<TargetView>): TargetView => ({
    target: '127.0.0.1:1',
    url: 'http://127.0.0.1:1',
    weight: 1,
    backup: false,
    healthy: true,
    inFlight: 0,
    ejected: false,
    drained: false,
    inRotation: true,
    source: 'config',
    ...t,
  });
  const answer = (breaker: string, t: Partial<TargetView>): DashboardAnswer => {
    const up: UpstreamView = { name: 'app', balance: 'round-robin', breaker, usable: 1, targets: [target(t)] };
    return { version: 3, stats: worker().stats.raw(), upstreams: [up] };
  };
  const merged = mergeDashboard(
    [answer('closed', { inFlight: 2 }), answer('open', { healthy: false, inFlight: 3, inRotation: false })],
    { asked: 2, answered: 2 },
  );
  const [app] = merged.upstreams;
  assert.equal(app!.breaker, 'open');
  assert.deepEqual(
    app!.targets.map((t) => [t.healthy, t.inFlight, t.inRotation, t.drained]),
    [[false, 5, true, false]],
  );
  assert.deepEqual(merged.workers, { asked: 2, answered: 2 });
  assert.equal(merged.version, 3);
});
