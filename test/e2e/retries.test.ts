// Retries, the circuit breaker, timeouts and draining: what reaches the backends is counted there.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../helpers/clock.ts';
import { nextEvent } from '../helpers/events.ts';
import { closedPort } from '../helpers/ports.ts';
import { assertProblem } from '../helpers/problem.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close().catch(() => undefined))));

async function track(b: Promise<Backend>): Promise<Backend> {
  const backend = await b;
  backends.push(backend);
  return backend;
}

/** A TCP server that reads a request and then resets the connection (a backend dying mid-request). */
async function resetter(): Promise<{ url: string; seen: () => number; bodies: string[]; close: () => void }> {
  let seen = 0;
  const bodies: string[] = [];
  const server: Server = createServer((socket) => {
    let data = '';
    socket.on('data', (d) => {
      data += d.toString();
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? 0);
      if (data.length - end - 4 < length) return;
      seen++;
      bodies.push(data.slice(end + 4));
      socket.resetAndDestroy();
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, seen: () => seen, bodies, close: () => server.close() };
}

const yaml = (upstream: string, route = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
${upstream}
routes: [{ name: all, match: { path: / }, upstream: app${route} }]
`;

describe('retries', () => {
  test('does not retry a POST that reached the upstream', async () => {
    const dying = await resetter();
    const good = await track(startEchoBackend('good'));
    const gw = await startGatewayYaml(
      yaml(`    balance: round-robin
    targets: [{ url: "${dying.url}" }, { url: "${good.url}" }]
    retries: { attempts: 3, on: [connect-failure, reset, 502, 503, 504] }`),
    );
    try {
      // Round robin starts at the dying target: the POST reaches it, it resets, and it is not sent again.
      const r = await request(gw.port(), '/orders', {
        method: 'POST',
        body: '{"order":1}',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 502);
      assert.equal(json(r).code, 'TP_UPSTREAM_RESET');
      assert.equal(dying.seen(), 1);
      assert.equal(good.requests.length, 0, 'the POST was not sent a second time');
    } finally {
      await gw.stop();
      dying.close();
    }
  });

  test('retries a PUT with a small body after a reset, on another target, with the body intact', async () => {
    const dying = await resetter();
    const good = await track(startEchoBackend('good'));
    const gw = await startGatewayYaml(
      yaml(`    targets: [{ url: "${dying.url}" }, { url: "${good.url}" }]
    retries: { attempts: 2, on: [reset], backoff: 1ms }`),
    );
    try {
      const r = await request(gw.port(), '/items/1', { method: 'PUT', body: 'x'.repeat(5000) });
      assert.equal(r.status, 200);
      assert.equal(json(r).name, 'good');
      assert.equal(json(r).body, 'x'.repeat(5000));
      assert.equal(dying.seen(), 1);
      assert.equal(dying.bodies[0], 'x'.repeat(5000));
    } finally {
      await gw.stop();
      dying.close();
    }
  });

  test('a POST whose target refuses the connection is sent to another target (it never reached one)', async () => {
    const good = await track(startEchoBackend('good'));
    const gw = await startGatewayYaml(
      yaml(`    targets: [{ url: "http://127.0.0.1:${await closedPort()}" }, { url: "${good.url}" }]`),
    );
    try {
      for (let i = 0; i < 4; i++) {
        const r = await request(gw.port(), '/orders', { method: 'POST', body: `n=${i}` });
        assert.equal(r.status, 200);
        assert.equal(json(r).body, `n=${i}`);
      }
      assert.equal(good.requests.length, 4);
    } finally {
      await gw.stop();
    }
  });

  test('a GET answered 503 is retried on another target; a POST answered 503 is not', async () => {
    const busy = await track(
      startBackend((_req, res) => {
        res.statusCode = 503;
        res.end(JSON.stringify({ name: 'busy' }));
      }),
    );
    const good = await track(startEchoBackend('good'));
    const gw = await startGatewayYaml(
      yaml(`    targets: [{ url: "${busy.url}" }, { url: "${good.url}" }]
    retries: { attempts: 1, on: [503] }`),
    );
    try {
      for (let i = 0; i < 4; i++) assert.equal((await request(gw.port(), '/')).status, 200);
      const posts = [];
      for (let i = 0; i < 4; i++) posts.push((await request(gw.port(), '/', { method: 'POST', body: 'p' })).status);
      assert.deepEqual(posts.sort(), [200, 200, 503, 503]);
    } finally {
      await gw.stop();
    }
  });

  test('no client request fails when a target is killed mid-test and retries are on', async (t) => {
    const a = await track(startEchoBackend('a'));
    const b = await track(startEchoBackend('b'));
    const clock = new ManualClock();
    const gw = await startGatewayYaml(
      yaml(`    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504] }
    healthCheck: { active: { interval: 100ms, unhealthyThreshold: 2 } }`),
      { clock },
    );
    let running = true;
    const failures: string[] = [];
    let ok = 0;
    const load = Array.from({ length: 8 }, async () => {
      while (running) {
        try {
          const r = await request(gw.port(), '/');
          if (r.status === 200) ok++;
          else failures.push(String(r.status));
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    try {
      await until(() => ok >= 20, 'the load to run');
      await b.close();
      // Until the second failed probe marks b down, retries cover the requests that reach it.
      const down = nextEvent(
        'turnpike:target:health',
        gw.runtime.gateway,
        (e) => e.target === `app|${b.url}` && e.healthy === false,
        'b unhealthy',
      );
      for (let round = 0; round < 2; round++) {
        await clock.whenPending(2, 'a and b waiting for their next probe');
        clock.advance(110);
      }
      await down;
      const marked = ok;
      await until(() => ok >= marked + 20, 'the load to run on without b');
      running = false;
      await Promise.all(load);
      t.diagnostic(`${ok} requests succeeded, ${failures.length} failed while a target was killed`);
      assert.deepEqual(failures, []);
      assert.ok(ok > 50);
    } finally {
      running = false;
      await gw.stop();
    }
  });
});

describe('circuit breaker', () => {
  test('opens on failures, fails fast with 503 and Retry-After, half-opens and closes again', async () => {
    let failing = true;
    const backend = await track(
      startBackend((_req, res) => {
        res.statusCode = failing ? 500 : 200;
        res.end(JSON.stringify({ name: 'b' }));
      }),
    );
    const clock = new ManualClock();
    const gw = await startGatewayYaml(
      yaml(`    targets: [{ url: "${backend.url}" }]
    circuitBreaker: { failureRatio: 0.5, minimumRequests: 5, window: 10s, openFor: 300ms, halfOpenRequests: 1 }`),
      { clock },
    );
    try {
      for (let i = 0; i < 5; i++) assert.equal((await request(gw.port(), '/')).status, 500);
      const seen = backend.requests.length;
      const open = await request(gw.port(), '/');
      assertProblem(open, 503, 'TP_CIRCUIT_OPEN');
      assert.equal(open.headers['retry-after'], '1');
      assert.equal(backend.requests.length, seen, 'an open breaker does not call the backend');
      failing = false;
      clock.advance(299);
      assertProblem(await request(gw.port(), '/'), 503, 'TP_CIRCUIT_OPEN');
      assert.equal(backend.requests.length, seen, 'open until openFor has passed');
      clock.advance(1);
      assert.equal((await request(gw.port(), '/')).status, 200); // the half-open probe
      for (let i = 0; i < 5; i++) assert.equal((await request(gw.port(), '/')).status, 200);
    } finally {
      await gw.stop();
    }
  });
});

describe('timeouts', () => {
  test('a route overrides the upstream response timeout; total bounds the exchange', async () => {
    // undici checks response and idle timeouts on a 0.5 s tick, so the backend is slower than that by far.
    const slow = await track(startBackend((_req, res) => setTimeout(() => res.end('late'), 1500)));
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${slow.url}" }], timeouts: { response: 5s } }
routes:
  - { name: quick, match: { path: /quick }, upstream: app, timeouts: { response: 100ms } }
  - { name: bounded, match: { path: /bounded }, upstream: app, timeouts: { total: 150ms } }
  - { name: patient, match: { path: / }, upstream: app }
`);
    try {
      let started = performance.now();
      const quick = await request(gw.port(), '/quick');
      assert.equal(quick.status, 504);
      assert.equal(json(quick).code, 'TP_UPSTREAM_TIMEOUT');
      assert.ok(performance.now() - started < 1400);
      started = performance.now();
      const bounded = await request(gw.port(), '/bounded');
      assert.equal(bounded.status, 504);
      assert.ok(performance.now() - started < 600);
      assert.equal((await request(gw.port(), '/')).status, 200);
    } finally {
      await gw.stop();
    }
  });
});

describe('draining', () => {
  test('a target removed by a reload gets no new requests but its in-flight request finishes', async () => {
    const slowA = await track(
      startBackend((_req, res) => setTimeout(() => res.end(JSON.stringify({ name: 'a' })), 300)),
    );
    const b = await track(startEchoBackend('b'));
    const gw = await startGatewayYaml(yaml(`    targets: [{ url: "${slowA.url}" }]`));
    try {
      const inflight = request(gw.port(), '/');
      await sleep(50);
      writeFileSync(gw.file, yaml(`    targets: [{ url: "${b.url}" }]`));
      assert.equal((await gw.reloader!.reload('test')).ok, true);
      const seenA = slowA.requests.length;
      for (let i = 0; i < 5; i++) assert.equal(json(await request(gw.port(), '/')).name, 'b');
      assert.equal(slowA.requests.length, seenA);
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(json(r).name, 'a');
    } finally {
      await gw.stop();
    }
  });
});
