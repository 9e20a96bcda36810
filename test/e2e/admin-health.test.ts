// /healthz and /readyz for Kubernetes probes, on a real `turnpike start` process: ready once every listener is
// bound, 503 on /readyz through the drain after SIGTERM (the admin listener stays up and closes last), and what
// the primary of a multi-worker instance serves.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { after, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import { spawnGateway } from '../helpers/process.ts';
import { openStream } from '../helpers/sse.ts';
import { json, request, startBackend, startEchoBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

test('readyz is 503 while draining after SIGTERM; healthz stays 200; the process exits 0', async () => {
  const held: ServerResponse[] = [];
  const slow = await startBackend((_req, res) => held.push(res));
  backends.push(slow);
  const gw = await spawnGateway(
    `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { slow: { targets: [{ url: "${slow.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: slow }]
admin: { port: 0 }
shutdown: { drainTimeout: 20s }
`,
    { listeners: 2 },
  );
  const admin = gw.port('admin');
  assert.equal((await request(admin, '/healthz')).status, 200);
  assert.equal(json(await request(admin, '/readyz')).status, 'ready');
  const inFlight = request(gw.port('web'), '/x');
  await until(() => held.length === 1, 'the request to reach the backend');
  gw.child.kill('SIGTERM');
  const draining = await until(async () => {
    const r = await request(admin, '/readyz', { agent: false });
    return r.status === 503 ? r : null;
  }, 'readyz to say 503');
  assertProblem(draining, 503, 'TP_ADMIN_NOT_READY');
  assert.equal(json(draining).detail, 'draining');
  assert.equal((await request(admin, '/healthz', { agent: false })).status, 200);
  held[0]!.end('done');
  assert.equal((await inFlight).status, 200);
  const [code] = gw.child.exitCode !== null ? [gw.child.exitCode] : await once(gw.child, 'exit');
  assert.equal(code, 0);
});

test('with workers the primary serves the admin API: upstreams and drains across workers, events, reload', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const gw = await spawnGateway(
    `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${a.url}" }, { url: "${b.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app }]
admin: { port: 0 }
workers: 2
`,
    { listeners: 2 },
  );
  try {
    const admin = gw.port('admin');
    assert.equal((await request(admin, '/healthz')).status, 200);
    await until(async () => (await request(admin, '/readyz')).status === 200, 'the primary to be ready');
    const up = json(await request(admin, '/api/upstreams'));
    assert.equal(up.workers, 2);
    assert.deepEqual(
      up.upstreams[0].targets.map((t: any) => t.target),
      [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
    );
    const drained = await request(admin, `/api/upstreams/app/targets/127.0.0.1:${a.port}/drain`, { method: 'POST' });
    assert.equal(json(drained).drained, true, drained.body);
    // Fresh connections reach either worker: none of them sends to the drained target.
    const names = new Set<string>();
    for (let i = 0; i < 12; i++) names.add(json(await request(gw.port('web'), '/x', { agent: false })).name);
    assert.deepEqual(names, new Set(['b']));
    const stream = await openStream(admin, '/api/events?upstream=app');
    try {
      for (let i = 0; i < 4; i++) await request(gw.port('web'), '/y', { agent: false });
      await until(() => stream.events.filter((e) => e.event === 'request').length === 4, 'events from the workers');
      assert.ok(stream.events.every((e) => e.data.upstream === 'app' && e.data.path === '/y'));
    } finally {
      stream.close();
    }
    const reloaded = await request(admin, '/api/reload', { method: 'POST' });
    assert.equal(json(reloaded).ok, true, reloaded.body);
    const after = json(await request(admin, '/api/upstreams')).upstreams[0].targets[0];
    assert.equal(after.drained, true, 'kept across the reload in every worker');
    await request(admin, `/api/upstreams/app/targets/127.0.0.1:${a.port}/undrain`, { method: 'POST' });
    assert.equal(json(await request(admin, '/api/upstreams')).upstreams[0].targets[0].drained, false);
    assert.equal(json(await request(admin, '/api/routes')).routes[0].name, 'all');
    const valid = await request(admin, '/api/config/validate', { method: 'POST', body: 'listeners: []' });
    assert.equal(json(valid).valid, false);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
