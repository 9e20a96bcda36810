// shutdown.acceptGrace, in the real process: after SIGTERM /readyz answers 503 at once while the listeners keep
// accepting and serving (a balancer checking /readyz takes the instance out meanwhile); then the drain closes them.
// With workers the primary's /readyz says 503 and each worker does the grace.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { request, startEchoBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const config = (backend: string, workers: number) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { u: { targets: [{ url: "${backend}" }] } }
routes: [{ match: { path: / }, upstream: u }]
admin: { address: 127.0.0.1, port: 0 }
shutdown: { acceptGrace: 3s, drainTimeout: 5s }
workers: ${workers}
`;

const logged =
  (gw: GatewayProcess, msg: string, times = 1) =>
  () =>
    gw.logLines.filter((l) => l.includes(`"msg":"${msg}"`)).length >= times;

/** `processes`: the processes that serve (each worker logs its grace and its drain). */
async function graceThenDrain(gw: GatewayProcess, processes: number): Promise<void> {
  const web = gw.port('web');
  const admin = gw.port('admin');
  assert.equal((await request(admin, '/readyz')).status, 200);
  const exit = gw.stop();
  await until(logged(gw, 'not ready; still serving for shutdown.acceptGrace', processes), 'the grace to start');
  // The grace (3 s) outlasts these few requests by far: each is a new connection (agent: false), accepted and served.
  const ready = await request(admin, '/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /draining/);
  for (let i = 0; i < 5; i++) assert.equal((await request(web, '/', { agent: false })).status, 200);
  assert.equal(logged(gw, 'listeners closed')(), false, 'the drain waits for the grace');
  await until(logged(gw, 'listeners closed', processes), 'the drain after the grace', 10_000);
  await assert.rejects(request(web, '/', { agent: false }), { code: 'ECONNREFUSED' });
  assert.equal(await exit, 0);
}

test('shutdown.acceptGrace: /readyz is 503 at once, requests are served through the grace, then the drain runs', async () => {
  const b = await startEchoBackend('b');
  backends.push(b);
  const gw = await spawnGateway(config(b.url, 1), { listeners: 2 });
  await graceThenDrain(gw, 1);
});

test('shutdown.acceptGrace with workers: the primary says not ready, the workers keep serving through the grace', async () => {
  const b = await startEchoBackend('b');
  backends.push(b);
  const gw = await spawnGateway(config(b.url, 2), { listeners: 2 });
  await untilWorkersStarted(gw);
  await graceThenDrain(gw, 2);
});
