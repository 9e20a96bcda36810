// concurrency through a real gateway with a backend that answers only when the test says so: max in flight, a
// bounded FIFO queue, queueTimeout, and slots given back when exchanges end (answered or abandoned).
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import {
  json,
  request,
  startBackend,
  startGatewayYaml,
  type Backend,
  type SimpleResponse,
} from '../helpers/servers.ts';

type Gateway = Awaited<ReturnType<typeof startGatewayYaml>>;

/** A backend that holds every request until `release()`; `arrived(n)` resolves once n requests have come in. */
async function heldBackend() {
  const held: ServerResponse[] = [];
  let arrivals = 0;
  const watchers: { n: number; resolve: () => void }[] = [];
  const backend = await startBackend((_req, res) => {
    held.push(res);
    arrivals++;
    for (const w of watchers.filter((w) => arrivals >= w.n)) {
      watchers.splice(watchers.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    backend,
    get arrivals() {
      return arrivals;
    },
    arrived: (n: number) =>
      arrivals >= n ? Promise.resolve() : new Promise<void>((resolve) => watchers.push({ n, resolve })),
    release(count = held.length) {
      for (const res of held.splice(0, count)) res.end('ok');
    },
  };
}

/** A request the test can abandon (the client closes its socket before the answer); `status` settles on an answer. */
function abandonable(port: number, path: string) {
  const req = httpRequest({ host: '127.0.0.1', port, path, agent: false });
  const status = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
  });
  req.on('error', () => {});
  req.end();
  return { status, abandon: () => req.destroy() };
}

describe('concurrency', () => {
  let held: Awaited<ReturnType<typeof heldBackend>>;
  let gateway: Gateway;
  let port: number;

  before(async () => {
    held = await heldBackend();
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  slow: { targets: [{ url: "${held.backend.url}" }] }
routes:
  - name: two
    match: { path: /two }
    upstream: slow
    plugins: [{ concurrency: { max: 2, queue: 1, queueTimeout: 5s } }]
  - name: short-wait
    match: { path: /short-wait }
    upstream: slow
    plugins: [{ concurrency: { max: 1, queue: 1, queueTimeout: 300ms } }]
  - name: abandon
    match: { path: /abandon }
    upstream: slow
    plugins: [{ concurrency: { max: 1, queue: 1, queueTimeout: 5s } }]
`);
    port = gateway.port();
  });
  after(async () => {
    held.release();
    await gateway?.stop();
    await held?.backend.close();
  });

  test('max 2, queue 1: of 4 concurrent requests 3 are served (one after waiting) and 1 gets 503', async (t) => {
    const start = held.arrivals;
    const answers: SimpleResponse[] = [];
    const all = Array.from({ length: 4 }, () =>
      request(port, '/two', { agent: false }).then((r) => (answers.push(r), r)),
    );
    await held.arrived(start + 2);
    // The 4th finds 2 in flight and the queue full: 503 at once, while the others are still held.
    const rejected = await Promise.race(all);
    assert.equal(rejected.status, 503);
    assert.equal(json(rejected).code, 'TP_CONCURRENCY_LIMITED');
    assert.equal(rejected.headers['retry-after'], '1');
    assert.equal(held.arrivals, start + 2, 'the queued request waits');
    held.release(1);
    await held.arrived(start + 3); // the queued one gets the freed slot
    held.release();
    const rs = await Promise.all(all);
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 200, 200, 503]);
    assert.equal(held.arrivals, start + 3);
    t.diagnostic(`answers in order: ${answers.map((r) => r.status).join(', ')}`);
  });

  test('queueTimeout: a queued request gets 503 once it has waited queueTimeout', async (t) => {
    const first = request(port, '/short-wait', { agent: false });
    await held.arrived(held.arrivals + 1);
    const started = performance.now();
    const waited = await request(port, '/short-wait', { agent: false });
    const ms = performance.now() - started;
    t.diagnostic(`queued request answered ${waited.status} after ${ms.toFixed(0)} ms (queueTimeout 300 ms)`);
    assert.equal(waited.status, 503);
    assert.ok(ms >= 290 && ms < 1000, `waited ${ms.toFixed(0)} ms`);
    held.release();
    assert.equal((await first).status, 200);
  });

  test('slots are released when responses end: a later burst of max is served in full', async () => {
    const start = held.arrivals;
    const burst = [request(port, '/two', { agent: false }), request(port, '/two', { agent: false })];
    await held.arrived(start + 2);
    held.release();
    assert.deepEqual(
      (await Promise.all(burst)).map((r) => r.status),
      [200, 200],
    );
  });

  test('abandoned requests give their slot back, whether in flight or still queued', async () => {
    const start = held.arrivals;
    const inFlight = abandonable(port, '/abandon');
    await held.arrived(start + 1);
    // Two more: one takes the queue place, the other is refused at once, whichever reaches the gateway first.
    const x = abandonable(port, '/abandon');
    const y = abandonable(port, '/abandon');
    const refused = await Promise.race([
      x.status.then((s) => ({ s, queued: y })),
      y.status.then((s) => ({ s, queued: x })),
    ]);
    assert.equal(refused.s, 503, 'slot and queue are taken');
    refused.queued.abandon();
    inFlight.abandon();
    // The queued one was granted the slot after its client left and handed it straight back: a new one gets it.
    const next = request(port, '/abandon', { agent: false });
    await held.arrived(start + 2);
    held.release();
    assert.equal((await next).status, 200);
    assert.equal(held.arrivals, start + 2, 'the abandoned queued request never reached the backend');
  });
});

describe('memory concurrency store', () => {
  test('waiters are served first come, first served, and a lowered max applies as slots are released', async () => {
    const store = new MemoryLimitStore({ sweepIntervalMs: 0 });
    assert.equal(store.acquire('k', 1, 2, 5000), true);
    const order: string[] = [];
    const a = (store.acquire('k', 1, 2, 5000) as Promise<boolean>).then((ok) => order.push(`a:${ok}`));
    const b = (store.acquire('k', 1, 2, 5000) as Promise<boolean>).then((ok) => order.push(`b:${ok}`));
    assert.equal(store.acquire('k', 1, 2, 5000), false, 'queue full');
    store.release('k');
    await a;
    store.release('k');
    await b;
    assert.deepEqual(order, ['a:true', 'b:true']);
    store.release('k');
    assert.deepEqual(store.slotsOf('k'), { active: 0, waiting: 0 });
    // max 2 with two held; a reload lowers it to 1: the next waiter runs only once both are back.
    assert.equal(store.acquire('m', 2, 1, 5000), true);
    assert.equal(store.acquire('m', 2, 1, 5000), true);
    let granted = false;
    const c = (store.acquire('m', 1, 1, 5000) as Promise<boolean>).then((ok) => (granted = ok));
    store.release('m');
    await Promise.resolve();
    assert.equal(granted, false);
    store.release('m');
    await c;
    assert.equal(granted, true);
    store.close();
  });

  test('a waiter that times out leaves the queue', async () => {
    const store = new MemoryLimitStore({ sweepIntervalMs: 0 });
    assert.equal(store.acquire('k', 1, 1, 20), true);
    assert.equal(await store.acquire('k', 1, 1, 20), false);
    assert.deepEqual(store.slotsOf('k'), { active: 1, waiting: 0 });
    store.release('k');
    assert.deepEqual(store.slotsOf('k'), { active: 0, waiting: 0 });
    store.close();
  });
});
