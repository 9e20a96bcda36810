// U11 (HAProxy check rise/fall, Envoy outlier detection), the health-check part, black-box through real sockets.
// 3 targets; B killed under client load is marked down within interval x fall (`turnpike:target:health`
// healthy:false) with client errors bounded by the requests in flight at B at the kill (default retries: only a
// refused connect is retried, so those get 502) and none at all with `retries: {}` (reset retried too); restored on
// the same port, it comes back only after `rise` passing probes. A target C answering 503 to half its requests is
// ejected by passive health (`turnpike:target:ejection`) once two come in a row (the detector counts consecutive
// failures, like Envoy's consecutive_5xx: a strict 503/200 alternation is never ejected) and traffic moves to the
// others. A flapping target D is damped: with rise > 1 it gets no traffic back on a passing probe or two.
// Probes run on a ManualClock: no sleeping, time moves when told. The breaker part of U11 is health-breaker.test.ts.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { after, test, type TestContext } from 'node:test';
import type { Gateway } from '../../src/index.ts';
import { ManualClock } from '../helpers/clock.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close().catch(() => undefined))));

async function track(b: Promise<Backend>): Promise<Backend> {
  const backend = await b;
  backends.push(backend);
  return backend;
}

/** `retries` absent: the default policy (a connect failure is retried once); `{}`: connect-failure, reset, 502-504. */
const yaml = (targets: Backend[], health: string, retries?: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [${targets.map((t) => `{ url: "${t.url}" }`).join(', ')}]
    healthCheck: ${health}${retries === undefined ? '' : `\n    retries: ${retries}`}
routes: [{ name: all, match: { path: / }, upstream: app }]
`;

/** Every event of `name` this gateway publishes, from now until the returned stop. */
function record(name: string, gw: Gateway): { events: StreamEvent[]; stop: () => void } {
  const events: StreamEvent[] = [];
  const onMessage = (m: unknown): void => {
    const e = m as StreamEvent;
    if (e.gateway === gw.runtime.gateway) events.push(e);
  };
  subscribe(name, onMessage);
  return { events, stop: () => unsubscribe(name, onMessage) };
}

/** One round of probes: once every target waits for its next probe, the clock moves past it (±10 % jitter). */
async function probeRound(clock: ManualClock, targets: number, interval: number): Promise<void> {
  await clock.whenPending(targets, 'every target waiting for its next probe');
  clock.advance(interval * 1.1);
}

/** Who answers the next `n` requests; any non-200 fails the test. */
async function answerers(port: number, n: number): Promise<Map<string, number>> {
  const names = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await request(port, `/r/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
    const name = json(r).name as string;
    names.set(name, (names.get(name) ?? 0) + 1);
  }
  return names;
}

/** Requests that are not health probes. */
const traffic = (b: Backend): number => b.requests.filter((r) => r.url !== '/healthz').length;

async function killAndRestore(t: TestContext, retries: string | undefined): Promise<void> {
  const a = await track(startEchoBackend('a'));
  const c = await track(startEchoBackend('c'));
  // B holds client requests while `holdB`, so some are in flight at B when it is killed.
  let holdB = false;
  const heldAtB: ServerResponse[] = [];
  const bHandler = (req: { url?: string }, res: ServerResponse): void => {
    if (req.url !== '/healthz' && holdB) {
      heldAtB.push(res);
      return;
    }
    res.end(JSON.stringify({ name: 'b' }));
  };
  let b = await track(startBackend(bHandler));
  const bKey = `app|${b.url}`;
  const clock = new ManualClock();
  const interval = 100;
  const fall = 2;
  const rise = 2;
  const gw = await startGatewayYaml(
    yaml(
      [a, b, c],
      `{ active: { path: /healthz, interval: ${interval}ms, timeout: 500ms, unhealthyThreshold: ${fall}, healthyThreshold: ${rise} } }`,
      retries,
    ),
    { clock },
  );
  const health = record('turnpike:target:health', gw);
  const port = gw.port();
  try {
    assert.deepEqual(new Set((await answerers(port, 9)).keys()), new Set(['a', 'b', 'c']));

    // Requests in flight at B when it dies.
    holdB = true;
    const inFlight = Array.from({ length: 6 }, (_, i) => request(port, `/inflight/${i}`).catch((e: Error) => e));
    await until(() => heldAtB.length > 0 && gw.runtime.inFlight === heldAtB.length, 'requests held at b, others done');
    const inFlightAtKill = heldAtB.length;

    // Client load all through the kill, the probes and the mark-down.
    let loading = true;
    const outcomes: (number | string)[] = [];
    const loop = async (id: number): Promise<void> => {
      for (let i = 0; loading; i++) {
        try {
          outcomes.push((await request(port, `/load/${id}/${i}`)).status);
        } catch (err) {
          outcomes.push((err as Error).message);
        }
      }
    };
    const loops = [loop(0), loop(1), loop(2)];

    await clock.whenPending(3, 'every target waiting for its next probe');
    const killedAt = clock.monotonic();
    const bPort = b.port;
    await b.close(); // resets the held requests; new connections are refused
    const down = nextEvent('turnpike:target:health', gw.runtime.gateway, (e) => e.target === bKey, 'b unhealthy');
    let downAt = 0;
    void down.then(() => (downAt = clock.monotonic())).catch(() => undefined);
    for (let round = 1; round < fall; round++) {
      await probeRound(clock, 3, interval);
      await clock.whenPending(3, `failed probe ${round} of b`);
      assert.equal(
        health.events.filter((e) => e.target === bKey).length,
        0,
        `${round} failed probe(s) is not fall ${fall}`,
      );
    }
    await probeRound(clock, 3, interval);
    assert.equal((await down).healthy, false);
    assert.ok(
      downAt - killedAt <= interval * fall * 1.1,
      `marked down ${downAt - killedAt} ms (clock) after the kill, more than interval x fall`,
    );
    const served = outcomes.length;
    await until(() => outcomes.length >= served + 30, '30 more requests after the mark-down');
    loading = false;
    await Promise.all(loops);
    const inFlightResults = await Promise.all(inFlight);

    const clientErrors = [
      ...outcomes,
      ...inFlightResults.map((r) => (r instanceof Error ? r.message : r.status)),
    ].filter((s) => s !== 200);
    t.diagnostic(
      `${inFlightAtKill} request(s) in flight at b when killed; ${outcomes.length + inFlight.length} client requests through the kill; errors: ${JSON.stringify(clientErrors)}`,
    );
    assert.ok(
      clientErrors.length <= inFlightAtKill,
      `${clientErrors.length} client errors, more than the ${inFlightAtKill} in flight at the kill`,
    );
    if (retries === undefined)
      // Only a refused connect is retried: the requests reset at the kill are the only ones a client sees fail.
      for (const e of clientErrors) assert.equal(e, 502, 'a reset request answered 502');
    else assert.deepEqual(clientErrors, [], 'GETs retried on connect failure and reset: no client error at all');

    // Down: only a and c answer.
    assert.deepEqual(new Set((await answerers(port, 12)).keys()), new Set(['a', 'c']));

    // Restored on the same port: not back after one passing probe, back after `rise`.
    holdB = false;
    b = await track(startBackend(bHandler, bPort));
    const up = nextEvent('turnpike:target:health', gw.runtime.gateway, (e) => e.target === bKey, 'b healthy');
    for (let round = 1; round < rise; round++) {
      await probeRound(clock, 3, interval);
      await clock.whenPending(3, `passed probe ${round} of b`);
      assert.equal(health.events.filter((e) => e.target === bKey).length, 1, `${round} pass(es) is not rise ${rise}`);
      assert.deepEqual(new Set((await answerers(port, 9)).keys()), new Set(['a', 'c']));
      assert.equal(traffic(b), 0, 'no client request reaches b before rise');
    }
    await probeRound(clock, 3, interval);
    assert.equal((await up).healthy, true);
    assert.deepEqual(new Set((await answerers(port, 9)).keys()), new Set(['a', 'b', 'c']));
    assert.ok(traffic(b) > 0, 'requests reach b again');
    assert.deepEqual(
      health.events.map((e) => [e.target, e.healthy]),
      [
        [bKey, false],
        [bKey, true],
      ],
      'one verdict each way, for b only',
    );
  } finally {
    health.stop();
    await gw.stop();
  }
}

test('active checks, default retries: a killed target is marked down within interval x fall, client errors bounded by the requests in flight at the kill, re-added after rise passes on the same port', (t) =>
  killAndRestore(t, undefined));

test('active checks, retries on reset: the same kill and restore with no client error at all', (t) =>
  killAndRestore(t, '{}'));

test('passive health: a target answering 503 to half its requests is ejected once they come in a row, and traffic moves to the others', async () => {
  const a = await track(startEchoBackend('a'));
  const b = await track(startEchoBackend('b'));
  // Half of C's answers are 503: isolated ones first (an Envoy consecutive_5xx detector lets those pass), then a run.
  const pattern = [503, 200, 503, 200, 503, 200, 503, 503, 200, 200];
  let n = 0;
  const c = await track(
    startBackend((_req, res) => {
      res.statusCode = pattern[n++ % pattern.length]!;
      res.end(JSON.stringify({ name: 'c' }));
    }),
  );
  const gw = await startGatewayYaml(
    yaml([a, b, c], '{ passive: { consecutiveFailures: 2, ejectFor: 60s, maxEjectedPercent: 34% } }', '{}'),
  );
  const ejections = record('turnpike:target:ejection', gw);
  const port = gw.port();
  try {
    const out = nextEvent('turnpike:target:ejection', gw.runtime.gateway, (e) => e.target === c.url, 'c ejected');
    // Until C has answered its 6 alternating answers, it stays in rotation; the 503s are retried elsewhere.
    await until(async () => {
      assert.equal((await request(port, '/')).status, 200, 'a 503 from c is retried on another target');
      return c.requests.length >= 6;
    }, 'c to answer its alternating 503s');
    assert.equal(ejections.events.length, 0, 'isolated 503s do not eject');
    // Then its run of two 503s ejects it.
    await until(async () => {
      assert.equal((await request(port, '/')).status, 200);
      return ejections.events.length > 0;
    }, 'c ejected');
    const e = await out;
    assert.equal(e.ejected, true);
    assert.equal(e.upstream, 'app');
    assert.equal(c.requests.length, 8, 'ejected on the second 503 in a row');
    const seen = c.requests.length;
    const names = await answerers(port, 30);
    assert.deepEqual(new Set(names.keys()), new Set(['a', 'b']), 'traffic moves to the others');
    assert.equal(c.requests.length, seen, 'no request reaches the ejected target');
    assert.deepEqual(
      ejections.events.map((x) => [x.target, x.ejected]),
      [[c.url, true]],
    );
  } finally {
    ejections.stop();
    await gw.stop();
  }
});

test('flapping: a target that goes up and down every two probes is damped by rise 3 and gets no traffic until it holds', async () => {
  const a = await track(startEchoBackend('a'));
  const b = await track(startEchoBackend('b'));
  let dUp = true;
  const d = await track(
    startBackend((req, res) => {
      if (req.url === '/healthz') res.statusCode = dUp ? 200 : 503;
      res.end(JSON.stringify({ name: 'd' }));
    }),
  );
  const dKey = `app|${d.url}`;
  const clock = new ManualClock();
  const interval = 100;
  const gw = await startGatewayYaml(
    yaml(
      [a, b, d],
      `{ active: { path: /healthz, interval: ${interval}ms, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 3 } }`,
    ),
    { clock },
  );
  const health = record('turnpike:target:health', gw);
  const port = gw.port();
  const verdicts = () => health.events.filter((e) => e.target === dKey).map((e) => e.healthy);
  try {
    assert.deepEqual(new Set((await answerers(port, 9)).keys()), new Set(['a', 'b', 'd']));
    // "Flap every 2 s" at a 1 s interval: down for two probes, up for two, five times over.
    let trafficWhenDown = -1;
    for (let cycle = 0; cycle < 5; cycle++) {
      for (const up of [false, false, true, true]) {
        dUp = up;
        await probeRound(clock, 3, interval);
        await clock.whenPending(3, 'the probe round to finish');
        if (verdicts().length > 0) {
          if (trafficWhenDown === -1) trafficWhenDown = traffic(d);
          // Up phases included: once marked down, d gets nothing while it flaps.
          assert.deepEqual(new Set((await answerers(port, 6)).keys()), new Set(['a', 'b']));
        }
      }
    }
    assert.deepEqual(verdicts(), [false], 'marked down once, never back on two passes out of rise 3');
    assert.equal(traffic(d), trafficWhenDown, 'no client request reached d while it flapped');
    // The flapping ends on a down phase; then it holds: back after exactly three passes in a row.
    for (const up of [false, false]) {
      dUp = up;
      await probeRound(clock, 3, interval);
      await clock.whenPending(3, 'the probe round to finish');
    }
    assert.deepEqual(verdicts(), [false]);
    dUp = true;
    for (let pass = 1; pass <= 3; pass++) {
      await probeRound(clock, 3, interval);
      await clock.whenPending(3, `pass ${pass}`);
      assert.deepEqual(verdicts(), pass < 3 ? [false] : [false, true], `after ${pass} steady pass(es)`);
    }
    assert.ok((await answerers(port, 9)).has('d'), 'd back in rotation');
  } finally {
    health.stop();
    await gw.stop();
  }
});
