// GET /metrics of a multi-worker instance, end to end: the built CLI with two workers, requests spread over both,
// and the primary's scrape adding the workers' counters and histograms while state gauges (target health, config
// and build info) stay single values, with no series twice and nothing promtool objects to.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { findOnPath } from '../provision.ts';
import { spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { request, startEchoBackend, type Backend } from '../helpers/servers.ts';
import { openStream, type Sse } from '../helpers/sse.ts';
import { until } from '../helpers/wait.ts';

/** Requests sent; enough for the cluster's round robin to give each worker several. */
const N = 20;
/** Workers report about once a second; a busy machine may take a few. */
const WAIT_MS = 15_000;

let backend: Backend;
let gw: GatewayProcess;
let feed: Sse;

before(async () => {
  backend = await startEchoBackend('app');
  gw = await spawnGateway(
    `
workers: 2
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { address: 127.0.0.1, port: 0 }
metrics: { enabled: true }
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: api, match: { path: / }, upstream: app }]
`,
    { listeners: 2 }, // the primary's admin listener and the workers' web listener
  );
  await untilWorkersStarted(gw);
});

after(async () => {
  feed?.close();
  assert.equal(await gw.stop(), 0);
  await backend.close();
});

/** Every sample line of a Prometheus text scrape, as `name{labels}` → value. Fails on a series seen twice. */
function samples(body: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const series = line.slice(0, space);
    assert.ok(!out.has(series), `series ${series} appears twice`);
    out.set(series, line.slice(space + 1));
  }
  return out;
}

test('the primary adds up the workers: N requests counted once each, state gauges never summed', async () => {
  const admin = gw.port('admin');
  // The primary relays each worker's request events (with its worker id): the proof that both served.
  feed = await openStream(admin, '/api/events');
  for (let i = 0; i < N; i++) {
    // A new connection each time: the cluster's round robin hands each to the next worker.
    const r = await request(gw.port('web'), `/r${i}`, { agent: false });
    assert.equal(r.status, 200);
  }
  await until(() => feed.events.filter((e) => e.event === 'request').length === N, `${N} request events`, WAIT_MS);
  const workers = new Set(feed.events.filter((e) => e.event === 'request').map((e) => e.data.workerId as number));
  assert.equal(workers.size, 2, `requests served by workers ${[...workers].join(', ')}`);

  const key = 'turnpike_requests_total{route="api",method="GET",status="2xx"}';
  const body = await until(
    async () => {
      const r = await request(admin, '/metrics');
      assert.equal(r.status, 200);
      return samples(r.body).get(key) === String(N) && r.body;
    },
    `${key} to reach ${N}`,
    WAIT_MS,
  );
  const s = samples(body);
  assert.equal(s.get('turnpike_request_duration_seconds_count{route="api"}'), String(N));
  assert.equal(s.get(`turnpike_target_healthy{upstream="app",target="${backend.url}"}`), '1', 'health is not summed');
  const named = (name: string) => [...s].filter(([series]) => series.startsWith(`${name}{`));
  assert.deepEqual(
    named('turnpike_config_info').map(([, v]) => v),
    ['1'],
    'one config, taken once',
  );
  assert.deepEqual(
    named('turnpike_build_info').map(([, v]) => v),
    ['1'],
    'one build, taken once',
  );

  const promtool = findOnPath('promtool', process.env.PATH ?? '');
  if (promtool !== undefined) {
    const run = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(`${run.stdout}${run.stderr}`.trim(), '', 'promtool finds no problem in the aggregate');
    assert.equal(run.status, 0);
  }
});
