// U11 (HAProxy check rise/fall, Envoy outlier detection), the breaker part: it opens after N failures, fails fast
// without calling the backend, half-opens after its cooldown and lets exactly `halfOpenRequests` probes through
// while the others are refused, then closes. The breaker reads the gateway's clock: a ManualClock, no sleeping.
// Health checks, passive ejection and flapping (the rest of the row) are in health-checks-faults.test.ts.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ServerResponse } from 'node:http';
import { ManualClock } from '../helpers/clock.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRecordingBackend } from '../helpers/recording-backend.ts';
import { request, startGatewayYaml } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

let failing = true;
let held: ServerResponse[] = [];
const backend = await startRecordingBackend((_req, res) => {
  if (failing) {
    res.writeHead(500, { 'content-length': '4' });
    return res.end('fail');
  }
  held.push(res); // probes are held, so they are in flight at once
});
after(() => backend.close());

test('a breaker opens after N failures, then half-open lets exactly halfOpenRequests probes reach the backend', async () => {
  const clock = new ManualClock();
  const gw = await startGatewayYaml(
    `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
accessLog: { enabled: false }
upstreams:
  app:
    targets: [{ url: "${backend.url}" }]
    circuitBreaker: { failureRatio: 100%, minimumRequests: 4, window: 10s, openFor: 1s, halfOpenRequests: 2 }
routes: [{ name: all, match: { path: / }, upstream: app }]
`,
    { clock },
  );
  try {
    const port = gw.port();
    for (let i = 0; i < 4; i++) assert.equal((await request(port, `/f/${i}`)).status, 500);
    const seen = backend.arrivals.length;
    for (let i = 0; i < 5; i++) assertProblem(await request(port, `/open/${i}`), 503, 'TP_CIRCUIT_OPEN');
    assert.equal(backend.arrivals.length, seen, 'an open breaker sends nothing');
    failing = false;
    clock.advance(1000);
    // Six at once: two probes go through and wait at the backend, four are refused at once.
    const all = Array.from({ length: 6 }, (_, i) => request(port, `/probe/${i}`));
    await until(() => backend.arrivals.length === seen + 2, 'the two probes to arrive');
    await until(() => gw.runtime.inFlight === 2, 'the four others to be answered');
    for (const res of held) res.end('ok');
    held = [];
    const results = await Promise.all(all);
    assert.equal(results.filter((r) => r.status === 200).length, 2);
    for (const r of results.filter((r) => r.status !== 200)) assertProblem(r, 503, 'TP_CIRCUIT_OPEN');
    assert.equal(backend.arrivals.length, seen + 2, 'no more than halfOpenRequests probes');
    // Both probes succeeded: closed again, everything goes through.
    const after = Array.from({ length: 4 }, (_, i) => request(port, `/closed/${i}`));
    await until(() => held.length === 4, 'the requests after closing to arrive');
    for (const res of held) res.end('ok');
    for (const r of await Promise.all(after)) assert.equal(r.status, 200);
  } finally {
    await gw.stop();
  }
});
