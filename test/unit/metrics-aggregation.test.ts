// A multi-worker primary's /metrics: the workers' reports aggregated under the names of a single process,
// counters and histograms summed, state gauges (breaker state, health, config and build info) never summed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CHANNELS, type Gateway } from '../../src/observability/events.ts';
import { GatewayMetrics } from '../../src/observability/metrics.ts';
import { PrimaryMetrics, reportWorkerMetrics, type MetricsReport } from '../../src/observability/metrics-workers.ts';
import { findOnPath } from '../provision.ts';

/** A worker's metrics, fed by events published on the stream as its gateway. */
function worker(id: number): { gateway: Gateway; metrics: GatewayMetrics } {
  const gateway: Gateway = { workerId: id };
  // Both workers hold the primary's verdict on the one target.
  const metrics = new GatewayMetrics(gateway, {
    buckets: [0.1, 1],
    inFlight: () => 0,
    targets: () => [{ id: 'app|http://127.0.0.1:1', healthy: false }],
  });
  metrics.start();
  metrics.configure({ listeners: [] });
  return { gateway, metrics };
}

function serve(gateway: Gateway, status: number): void {
  const ctx = {
    gateway,
    routeName: 'api',
    upstreamName: 'app',
    req: { method: 'GET' },
    status,
    startTime: performance.now(),
    bytesIn: 0,
    bytesOut: 10,
  };
  CHANNELS.requestEnd.publish({ gateway, ctx });
}

async function report(m: GatewayMetrics): Promise<MetricsReport> {
  return { type: 'metrics', families: await m.snapshot() };
}

test('counters and histograms are summed; breaker state by max, health and config info taken once', async () => {
  const a = worker(1);
  const b = worker(2);
  try {
    serve(a.gateway, 200);
    serve(a.gateway, 200);
    serve(b.gateway, 200);
    serve(b.gateway, 503);
    CHANNELS.breaker.publish({ gateway: a.gateway, upstream: 'app', from: 'closed', to: 'open' });
    CHANNELS.breaker.publish({ gateway: b.gateway, upstream: 'app', from: 'closed', to: 'closed' });
    for (const w of [a, b])
      CHANNELS.health.publish({ gateway: w.gateway, target: 'app|http://127.0.0.1:1', healthy: false });
    for (const w of [a, b]) CHANNELS.reload.publish({ gateway: w.gateway, ok: true, version: 2, error: null });

    const primary = new PrimaryMetrics();
    primary.receive(1, await report(a.metrics));
    primary.receive(2, await report(b.metrics));
    const { body } = await primary.scrape(undefined);
    const line = (series: string) => body.split('\n').find((l) => l.startsWith(series + ' '));
    assert.equal(
      line('turnpike_requests_total{route="api",method="GET",status="2xx"}'),
      'turnpike_requests_total{route="api",method="GET",status="2xx"} 3',
    );
    assert.equal(line('turnpike_requests_total{route="api",method="GET",status="5xx"}')?.split(' ')[1], '1');
    assert.equal(line('turnpike_request_duration_seconds_count{route="api"}')?.split(' ')[1], '4');
    assert.equal(line('turnpike_bytes_sent_total{route="api"}')?.split(' ')[1], '40');
    assert.equal(line('turnpike_circuit_breaker_state{upstream="app"}')?.split(' ')[1], '1');
    assert.equal(line('turnpike_target_healthy{upstream="app",target="http://127.0.0.1:1"}')?.split(' ')[1], '0');
    assert.equal(line('turnpike_config_reloads_total{result="success"}')?.split(' ')[1], '1');
    assert.equal(body.match(/^turnpike_config_info\{.*\} (\d+)$/m)?.[1], '1');
    assert.equal(body.match(/^turnpike_build_info\{.*\} (\d+)$/m)?.[1], '1');
    assert.equal(line('turnpike_requests_in_flight')?.split(' ')[1], '0');

    // A worker that exits leaves the sum.
    primary.forget(2);
    const after = (await primary.scrape(undefined)).body;
    assert.match(after, /^turnpike_requests_total\{route="api",method="GET",status="2xx"\} 2$/m);

    const promtool = findOnPath('promtool', process.env.PATH ?? '');
    if (promtool !== undefined) {
      const run = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
      assert.equal(`${run.stdout}${run.stderr}`.trim(), '', 'promtool finds no problem in the aggregate');
      assert.equal(run.status, 0);
    }
  } finally {
    a.metrics.stop();
    b.metrics.stop();
  }
});

test('a worker reports to the primary at once when its breaker changes state', async () => {
  const w = worker(3);
  const reports: MetricsReport[] = [];
  let arrived: () => void = () => undefined;
  const stop = reportWorkerMetrics(
    w.gateway,
    () => w.metrics,
    (m) => {
      reports.push(m);
      arrived();
    },
  );
  try {
    const next = new Promise<void>((resolve) => (arrived = resolve));
    CHANNELS.breaker.publish({ gateway: w.gateway, upstream: 'app', from: 'closed', to: 'half-open' });
    // Another gateway's event is not this worker's business.
    CHANNELS.breaker.publish({ gateway: { workerId: 9 }, upstream: 'app', from: 'closed', to: 'open' });
    await next;
    assert.equal(reports.length, 1);
    const primary = new PrimaryMetrics();
    primary.receive(3, reports[0]!);
    assert.match((await primary.scrape(undefined)).body, /^turnpike_circuit_breaker_state\{upstream="app"\} 2$/m);
  } finally {
    stop();
    w.metrics.stop();
  }
});

test("process_max_fds is one process's limit, not a sum; an event-loop window without a sample reports no minimum", async () => {
  const a = worker(4);
  const b = worker(5);
  try {
    const value = (body: string, name: string) => body.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1];
    const one = new PrimaryMetrics();
    one.receive(4, await report(a.metrics));
    const limit = value((await one.scrape(undefined)).body, 'process_max_fds');
    assert.ok(limit !== undefined && Number(limit) > 0, 'the limit is reported');

    // Two reports with no event-loop turn between them: the second one's delay window holds no sample.
    await report(a.metrics);
    const empty = await report(b.metrics);
    const lagMin = (empty.families as { name: string; values: unknown[] }[]).find(
      (f) => f.name === 'nodejs_eventloop_lag_min_seconds',
    );
    assert.deepEqual(lagMin?.values, [], 'no minimum for a window without a sample (prom-client says 9.2e9 s)');

    const two = new PrimaryMetrics();
    two.receive(4, await report(a.metrics));
    two.receive(5, empty);
    const body = (await two.scrape(undefined)).body;
    assert.equal(value(body, 'process_max_fds'), limit);
    const min = value(body, 'nodejs_eventloop_lag_min_seconds');
    assert.ok(min === undefined || Number(min) < 1e9, `lag minimum ${min}`);
  } finally {
    a.metrics.stop();
    b.metrics.stop();
  }
});
