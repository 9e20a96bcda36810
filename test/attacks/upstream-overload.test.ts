// U12 (Envoy circuit breaker max_requests / max_pending_requests, HAProxy maxconn / maxqueue): a backend that
// can take 10 requests at once. The upstream's `maxRequests` (here 10; 1024 by default) bounds the requests
// sent to it, `queue` (here 20; 1024 by default) those waiting in order, for at most `timeouts.connect`; past
// either, a fast 503 TP_UPSTREAM_OVERLOADED with Retry-After, and admission recovers as soon as slots free up.
// Before, undici queued every request past its connections without bound. Tested at the limit and one past it.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/index.ts';
import { scale } from '../helpers/attack-scale.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { request, startGatewayYaml, type SimpleResponse } from '../helpers/servers.ts';

let backend: RecordingBackend;
/** Responses the backend holds until the test lets them go; with `hold` off it answers at once. */
const held: ServerResponse[] = [];
let hold = true;
let inFlight = 0;
let maxInFlight = 0;

before(async () => {
  backend = await startRecordingBackend((_req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    if (hold) held.push(res);
    else setImmediate(() => res.end('ok'));
  });
});
after(() => backend.close());

function release(): void {
  hold = false;
  for (const res of held.splice(0)) res.end('ok');
}

function gateway(maxRequests: number, queue: number, connect = '5s') {
  return startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [{ url: "${backend.url}" }]
    maxRequests: ${maxRequests}
    queue: ${queue}
    timeouts: { connect: ${connect} }
routes: [{ match: { path: / }, upstream: app }]
`);
}

/** Resolves once `n` requests of `gw` were routed (with no request hooks, each is admitted or queued at once). */
function routed(gw: { runtime: { gateway: unknown } }, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const on = (m: unknown) => {
      if ((m as { gateway: unknown }).gateway !== gw.runtime.gateway || ++seen < n) return;
      unsubscribe('turnpike:request:route', on);
      resolve();
    };
    subscribe('turnpike:request:route', on);
  });
}

const get = (port: number, path: string) => request(port, path, { agent: false });

function assertOverloaded(r: SimpleResponse): void {
  assertProblem(r, 503, 'TP_UPSTREAM_OVERLOADED', [String(backend.port)]);
  assert.equal(r.headers['retry-after'], '1');
}

describe('maxRequests: 10, queue: 20', () => {
  let gw: Awaited<ReturnType<typeof gateway>>;
  before(async () => {
    hold = true;
    maxInFlight = 0;
    gw = await gateway(10, 20);
  });
  after(async () => {
    release();
    await gw.stop();
  });

  test('10 in flight and 20 waiting are all answered; the 31st gets a fast 503 with Retry-After', async () => {
    const all = routed(gw, 30);
    const accepted = Array.from({ length: 30 }, (_, i) => get(gw.port('web'), `/load/${i}`));
    await all;
    await backend.untilArrivals(10);
    const refused = await get(gw.port('web'), '/load/one-too-many');
    assertOverloaded(refused);
    // The 20 waiting never reached the backend, and the refused one never will.
    assert.equal(backend.arrivals.length, 10);
    release();
    const results = await Promise.all(accepted);
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
    );
    assert.equal(maxInFlight, 10);
    assert.equal(backend.arrivals.filter((a) => a.url === '/load/one-too-many').length, 0);
  });

  test('admission recovers once the load is gone', async () => {
    const r = await get(gw.port('web'), '/after');
    assert.equal(r.status, 200);
  });
});

describe('maxRequests: 1, queue: 1, timeouts.connect: 500ms', () => {
  let gw: Awaited<ReturnType<typeof gateway>>;
  before(async () => {
    hold = true;
    gw = await gateway(1, 1, '500ms');
  });
  after(async () => {
    release();
    await gw.stop();
  });

  test('a request waits in the queue at most timeouts.connect, then gets 503 without reaching the backend', async () => {
    const before = backend.arrivals.length;
    const first = get(gw.port('web'), '/hold');
    await backend.untilArrivals(before + 1);
    const waited = await get(gw.port('web'), '/waits');
    assertOverloaded(waited);
    assert.equal(backend.arrivals.filter((a) => a.url === '/waits').length, 0);
    release();
    assert.equal((await first).status, 200);
  });

  test('a client that leaves the queue gives its place back', async () => {
    hold = true;
    const before = backend.arrivals.length;
    const first = get(gw.port('web'), '/hold2');
    await backend.untilArrivals(before + 1);
    // One waits, then leaves: its place must be free for the next one.
    const gone = new Promise<void>((resolve) => {
      const on = (m: unknown) => {
        const e = m as { gateway: unknown; ctx: { path: string } };
        if (e.gateway !== gw.runtime.gateway || e.ctx.path !== '/leaves') return;
        unsubscribe('turnpike:request:end', on);
        resolve();
      };
      subscribe('turnpike:request:end', on);
    });
    const routedOne = routed(gw, 1);
    const leaving = connect(gw.port('web'), '127.0.0.1');
    leaving.on('error', () => {});
    leaving.write('GET /leaves HTTP/1.1\r\nHost: a\r\n\r\n');
    await routedOne;
    leaving.destroy();
    await gone;
    const routedNext = routed(gw, 1);
    const next = get(gw.port('web'), '/next');
    await routedNext;
    release();
    assert.equal((await first).status, 200);
    assert.equal((await next).status, 200);
    assert.equal(backend.arrivals.filter((a) => a.url === '/leaves').length, 0);
  });
});

describe('a flood of clients against maxRequests: 10, queue: 20', () => {
  test('every client gets its 200 or a fast 503 with Retry-After, and the backend never holds more than 10', async (t) => {
    hold = false;
    maxInFlight = 0;
    const gw = await gateway(10, 20);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    try {
      const clients = scale(200, 2000);
      const results = await Promise.all(Array.from({ length: clients }, (_, i) => get(gw.port('web'), `/flood/${i}`)));
      lag.disable();
      const ok = results.filter((r) => r.status === 200).length;
      const refused = results.filter((r) => r.status === 503);
      for (const r of refused) assertOverloaded(r);
      assert.equal(ok + refused.length, clients);
      assert.ok(ok >= 30, `${ok} answered`);
      assert.ok(maxInFlight <= 10, `${maxInFlight} at once at the backend`);
      t.diagnostic(
        `${clients} clients: ${ok} answered, ${refused.length} refused with 503; backend at most ${maxInFlight} at once; ` +
          `event loop delay (whole test process) p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms`,
      );
      assert.equal((await get(gw.port('web'), '/after-flood')).status, 200);
    } finally {
      lag.disable();
      await gw.stop();
    }
  });
});

test('maxRequests and queue: defaults 1024 and 1024; maxRequests at least 1, queue at least 0', () => {
  const config = (extra: string) => `
listeners: [{ name: web, protocol: http, port: 0 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:1" }]${extra} } }
routes: [{ match: { path: / }, upstream: app }]
`;
  const app = parseConfig(config('')).upstreams.app!;
  assert.equal(app.maxRequests, 1024);
  assert.equal(app.queue, 1024);
  assert.equal(parseConfig(config(', maxRequests: 1, queue: 0')).upstreams.app!.queue, 0);
  for (const bad of [', maxRequests: 0', ', queue: -1', ', maxRequests: 1.5']) {
    assert.throws(() => parseConfig(config(bad)), /maxRequests|queue/, bad);
  }
});
