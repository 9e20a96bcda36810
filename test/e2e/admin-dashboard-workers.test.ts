// The live dashboard's stream with `workers: 2`, on a real `turnpike start` process: the primary asks both workers
// for their raw numbers each second and pushes their sum (requests, cache outcomes, p50/p99 from the summed
// histograms); a worker that does not answer (stopped with SIGSTOP) is left out of a tick and the stream goes on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { childPids, spawnGateway, type GatewayProcess, untilWorkersStarted } from '../helpers/process.ts';
import { openStream, type Sse } from '../helpers/sse.ts';
import { request, startBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const TOKEN = 'dashboard-workers-token-0123456789';
const N = 8;
const WAIT_MS = 15_000;

let backend: Backend;
let gw: GatewayProcess;
let stream: Sse;

before(async () => {
  backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end('item');
  });
  gw = await spawnGateway(
    `
workers: 2
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { b: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: items, match: { path: / }, upstream: b, plugins: [{ cache: { store: memory } }] }]
admin: { port: 0, auth: { tokens: ["${TOKEN}"] } }
`,
    { listeners: 2 },
  );
  await untilWorkersStarted(gw);
});

after(async () => {
  stream?.close();
  assert.equal(await gw.stop(), 0);
  await backend.close();
});

type Summary = { workers: { asked: number; answered: number }; routes: any[]; cache: any; upstreams: any[] };
const summaries = (from = 0) =>
  stream.events
    .slice(from)
    .filter((e) => e.event === 'summary')
    .map((e) => e.data as Summary);
const items = (s: Summary) => s.routes.find((r) => r.route === 'items');

test('the stream sums both workers: requests, cache outcomes, and p50/p99 from their histograms', async () => {
  // Fresh connections: the cluster primary hands them to the workers in turn.
  for (let i = 0; i < N; i++) assert.equal((await request(gw.port('web'), '/item', { agent: false })).status, 200);
  // Each worker's memory cache missed once: both workers served some of the N.
  assert.equal(backend.requests.length, 2, 'one miss per worker');

  stream = await openStream(gw.port('admin'), '/api/dashboard/stream', { authorization: `Bearer ${TOKEN}` });
  assert.equal(stream.res.statusCode, 200);
  const s = await until(
    () => summaries().find((x) => items(x)?.requests === N),
    `a summary with ${N} requests on the route`,
    WAIT_MS,
  );
  assert.deepEqual(s.workers, { asked: 2, answered: 2 });
  const route = items(s);
  assert.equal(typeof route.p50Ms, 'number');
  assert.equal(typeof route.p99Ms, 'number');
  assert.ok(route.p50Ms <= route.p99Ms);
  assert.equal(route.errorRate, 0);
  assert.deepEqual(s.cache, { hits: N - 2, misses: 2, hitRatio: (N - 2) / N });
  assert.deepEqual(
    s.upstreams[0].targets.map((t: any) => [t.healthy, t.inFlight]),
    [[true, 0]],
  );
});

test('a worker that does not answer is left out of a tick, and the stream goes on', async () => {
  const [victim] = childPids(gw.pid);
  const from = stream.events.length;
  process.kill(victim!, 'SIGSTOP'); // its IPC goes unread: the primary's ask times out
  try {
    await until(
      () => summaries(from).filter((x) => x.workers.answered === 1).length >= 2,
      'two summaries from the one worker that answers',
      WAIT_MS,
    );
    const partial = summaries(from).find((x) => x.workers.answered === 1)!;
    assert.equal(partial.workers.asked, 2);
    // Only the answering worker's share of the N (each worker served at least its one miss).
    const share = items(partial)?.requests ?? 0;
    assert.ok(share >= 1 && share < N, `${share} of ${N} requests`);
  } finally {
    process.kill(victim!, 'SIGCONT');
  }
  const back = stream.events.length;
  await until(
    () => summaries(back).find((x) => x.workers.answered === 2 && items(x)?.requests === N),
    'both workers again',
    WAIT_MS,
  );
});
