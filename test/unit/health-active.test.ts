// Active health checks against real servers on port 0: transitions after consecutive results, timeouts, tcp
// probes, the request a probe sends, and reconciling the target set. Short intervals; waits poll a condition.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import type { Clock } from '../../src/clock.ts';
import { ActiveHealthChecker, type ActiveCheckSettings, type TargetHealth } from '../../src/health/active-checker.ts';
import { ManualClock } from '../helpers/clock.ts';
import { closedPort } from '../helpers/ports.ts';
import { until } from '../helpers/wait.ts';

/** Room for a loaded 2-core machine on top of the computed worst case. */
const SLACK = 250;

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

function settings(over: Partial<ActiveCheckSettings> = {}): ActiveCheckSettings {
  return {
    type: 'http',
    path: '/healthz',
    expectStatus: [200, 399],
    interval: 50,
    timeout: 200,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    ...over,
  };
}

interface Change {
  readonly key: string;
  readonly healthy: boolean;
  readonly at: number;
}

/** A checker recording its verdicts and logs; on `clock` (a ManualClock: probes are due when the test moves it). */
function newChecker(clock?: Clock) {
  const changes: Change[] = [];
  const logs: { msg: string; fields: Record<string, unknown> }[] = [];
  const checker = new ActiveHealthChecker((key, healthy) => changes.push({ key, healthy, at: performance.now() }), {
    log: (msg, fields) => logs.push({ msg, fields: fields as Record<string, unknown> }),
    ...(clock ? { clock } : {}),
  });
  cleanups.push(() => checker.stop());
  const state = (key: string): TargetHealth => checker.status().get(key) ?? assert.fail(`no status for ${key}`);
  return { checker, changes, logs, state };
}

/** How long a probe outcome may take to show (intervals here are 50-100 ms). */
const WAIT_MS = 3000;

interface Probe {
  readonly path: string;
  readonly method: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** An HTTP backend that records every probe; `/status/NNN` answers NNN, anything else 200. */
async function healthServer(port = 0) {
  const probes: Probe[] = [];
  const server = createHttpServer((req, res) => {
    probes.push({ path: req.url!, method: req.method!, headers: req.headers });
    res.statusCode = Number(/^\/status\/(\d{3})/.exec(req.url!)?.[1] ?? 200);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanups.push(() => server.listening && close());
  const count = (path: string) => probes.filter((p) => p.path === path).length;
  return { port: bound, url: `http://127.0.0.1:${bound}`, probes, count, close };
}

/** A TCP server that accepts and never answers; counts connections and how many are open at once. */
async function hangingServer() {
  const stats = { accepted: 0, open: 0, maxOpen: 0 };
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    stats.accepted++;
    stats.maxOpen = Math.max(stats.maxOpen, ++stats.open);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      stats.open--;
      sockets.delete(socket);
    });
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, stats };
}

describe('active health checks', () => {
  test('a target whose server is closed turns unhealthy after unhealthyThreshold failed probes, one interval apart', async () => {
    const s = await healthServer();
    const clock = new ManualClock();
    const { checker, changes, logs, state } = newChecker(clock);
    checker.set([{ key: 'a', url: s.url, check: settings({ interval: 50, timeout: 200, unhealthyThreshold: 3 }) }]);
    assert.equal(checker.isHealthy('a'), true, 'a new target starts healthy');
    await clock.whenPending(1, 'the first probe of a to come back');
    assert.equal(state('a').passes, 1);
    await s.close();
    for (let failures = 1; failures <= 3; failures++) {
      assert.deepEqual(changes, [], `still healthy after ${failures - 1} failed probes`);
      clock.advance(50 * 0.9 - 1);
      assert.equal(clock.pending, 1, 'no probe before the interval (50 ms, less 10 % jitter) has passed');
      clock.advance(50 * 0.2 + 1);
      assert.equal(clock.pending, 0, 'probed once the interval (plus 10 % jitter) has passed');
      await clock.whenPending(1, `failed probe ${failures} to come back`);
      assert.equal(state('a').failures, failures);
    }
    assert.deepEqual(
      changes.map((c) => [c.key, c.healthy]),
      [['a', false]],
    );
    assert.equal(checker.isHealthy('a'), false);
    assert.equal(state('a').lastError, 'ECONNREFUSED');
    assert.deepEqual(
      logs.map((l) => [l.fields.url, l.fields.reason, l.fields.healthy]),
      [[s.url, 'ECONNREFUSED', false]],
    );
  });

  test('a target that comes back turns healthy after healthyThreshold passes', async () => {
    const s = await healthServer();
    const clock = new ManualClock();
    const { checker, changes } = newChecker(clock);
    checker.set([
      { key: 'a', url: s.url, check: settings({ interval: 50, healthyThreshold: 2, unhealthyThreshold: 1 }) },
    ]);
    await clock.whenPending(1, 'the first probe of a to come back');
    await s.close();
    clock.advance(55);
    await clock.whenPending(1, 'the failed probe to come back');
    assert.deepEqual(
      changes.map((c) => c.healthy),
      [false],
    );
    const again = await healthServer(s.port);
    clock.advance(55);
    await clock.whenPending(1, 'the first pass to come back');
    assert.deepEqual(
      changes.map((c) => c.healthy),
      [false],
      'one pass is not healthyThreshold 2',
    );
    clock.advance(55);
    await clock.whenPending(1, 'the second pass to come back');
    assert.equal(again.probes.length, 2, 'two passes were needed');
    assert.deepEqual(
      changes.map((c) => c.healthy),
      [false, true],
    );
    assert.equal(checker.isHealthy('a'), true);
  });

  test('an http status outside expectStatus fails (500, or 302 against [200, 299]); 200-399 passes', async () => {
    const s = await healthServer();
    const { checker, changes, logs, state } = newChecker();
    const check = (path: string, expectStatus: [number, number] = [200, 399]) =>
      settings({ path, expectStatus, unhealthyThreshold: 2 });
    checker.set([
      { key: '200', url: s.url, check: check('/status/200') },
      { key: '399', url: s.url, check: check('/status/399') },
      { key: '500', url: s.url, check: check('/status/500') },
      { key: '302-narrow', url: s.url, check: check('/status/302', [200, 299]) },
    ]);
    await until(
      () => changes.length === 2 && state('200').passes >= 3 && state('399').passes >= 3,
      'two failing targets flip, passing ones pass 3 times',
      WAIT_MS,
    );
    assert.deepEqual(changes.map((c) => `${c.key}:${c.healthy}`).sort(), ['302-narrow:false', '500:false']);
    for (const key of ['200', '399'])
      assert.deepEqual([checker.isHealthy(key), state(key).failures, state(key).lastError], [true, 0, undefined]);
    assert.equal(state('500').lastError, 'status 500');
    assert.equal(state('302-narrow').lastError, 'status 302');
    assert.deepEqual(logs.map((l) => l.fields.reason).sort(), ['status 302', 'status 500']);
  });

  test('a probe that hangs (accepted, never answered) fails by timeout, one probe at a time', async (t) => {
    const h = await hangingServer();
    const { checker, changes, state } = newChecker();
    const started = performance.now();
    checker.set([{ key: 'hang', url: h.url, check: settings({ timeout: 100, interval: 50, unhealthyThreshold: 2 }) }]);
    const change = await until(() => changes.find((c) => !c.healthy), 'onChange(hang, false)', WAIT_MS);
    t.diagnostic(
      `hanging target -> unhealthy in ${(change.at - started).toFixed(0)} ms (2 x timeout 100 ms + interval 50 ms)`,
    );
    assert.equal(state('hang').lastError, 'timeout');
    const ms = state('hang').lastProbeMs!;
    assert.ok(ms >= 95 && ms <= 100 + SLACK, `a timed-out probe took ${ms} ms`);
    assert.ok(h.stats.accepted >= 2);
    assert.equal(h.stats.maxOpen, 1, 'probes of one target never overlap');
  });

  test('tcp probes: a listening port passes, a closed port fails', async () => {
    const open = await hangingServer();
    const closedUrl = `http://127.0.0.1:${await closedPort()}`;
    const { checker, changes, state } = newChecker();
    const check = settings({ type: 'tcp', unhealthyThreshold: 1 });
    checker.set([
      { key: 'open', url: open.url, check },
      { key: 'closed', url: closedUrl, check },
    ]);
    await until(() => changes.length === 1 && state('open').passes >= 2, 'closed flips, open passes twice', WAIT_MS);
    assert.deepEqual(
      changes.map((c) => [c.key, c.healthy]),
      [['closed', false]],
    );
    assert.deepEqual([checker.isHealthy('open'), state('open').lastError], [true, undefined]);
    assert.equal(state('closed').lastError, 'ECONNREFUSED');
    checker.stop();
    await until(() => open.stats.open === 0, 'the probe sockets are closed', WAIT_MS);
  });

  test('the probe sends GET of the configured path with the Host header, its User-Agent and Connection: close', async () => {
    const s = await healthServer();
    const { checker } = newChecker();
    checker.set([
      { key: 'custom', url: s.url, check: settings({ path: '/healthz?deep=1', host: 'api.internal' }) },
      { key: 'default', url: s.url, check: settings({ path: '/ping' }) },
    ]);
    const custom = await until(
      () => s.probes.find((p) => p.path === '/healthz?deep=1'),
      'a probe of /healthz?deep=1',
      WAIT_MS,
    );
    const plain = await until(() => s.probes.find((p) => p.path === '/ping'), 'a probe of /ping', WAIT_MS);
    assert.equal(custom.method, 'GET');
    assert.equal(custom.headers.host, 'api.internal');
    assert.equal(custom.headers['user-agent'], 'turnpike-health-check');
    assert.equal(custom.headers.connection, 'close');
    assert.equal(plain.headers.host, `127.0.0.1:${s.port}`, 'default Host: the target host:port');
  });

  test('set() keeps unchanged targets as they are, restarts changed ones, stops removed ones; stop() stops all', async () => {
    const s = await healthServer();
    const h = await hangingServer();
    const clock = new ManualClock();
    const { checker, changes, state } = newChecker(clock);
    const a = () => ({ key: 'a', url: s.url, check: settings({ path: '/a', interval: 100 }) });
    const b = (path: string) => ({
      key: 'b',
      url: s.url,
      check: settings({ path, interval: 100, unhealthyThreshold: 1 }),
    });
    checker.set([a(), b('/status/500')]);
    await clock.whenPending(2, 'the first probes of a and b to come back');
    assert.deepEqual([changes.length, s.count('/a')], [1, 1], 'b unhealthy, a probed once');

    // The same targets again (equal, not identical objects), many times: no restart, no extra probes.
    const passes = state('a').passes;
    for (let i = 0; i < 20; i++) checker.set([a(), b('/status/500')]);
    assert.equal(clock.pending, 2, 'each target still waits for its next probe (a restarted one is probed at once)');
    assert.equal(state('a').passes, passes, 'counters kept');
    clock.advance(110);
    await clock.whenPending(2, 'the next probes of a and b to come back');
    assert.equal(s.count('/a'), 2, 'one probe of a per interval');
    assert.equal(checker.isHealthy('b'), false);

    // A changed check: fresh counters, probed at once, the unhealthy flag kept (no transition).
    checker.set([a(), b('/status/503')]);
    assert.deepEqual([checker.isHealthy('b'), state('b').failures], [false, 0]);
    await clock.whenPending(2, 'b probed at once with its new path');
    assert.equal(state('b').lastError, 'status 503');
    assert.equal(changes.length, 1);

    // Removed: its next probe is cancelled, and it has no status.
    checker.set([a(), { key: 'h', url: h.url, check: settings({ timeout: 10_000 }) }]);
    assert.equal(clock.pending, 1, 'only a waits for its next probe (h is probing)');
    assert.deepEqual([...checker.status().keys()].sort(), ['a', 'h']);
    const bProbes = s.count('/status/503');
    clock.advance(110);
    await clock.whenPending(1, 'the next probe of a to come back');
    assert.equal(s.count('/a'), 3);
    assert.equal(s.count('/status/503'), bProbes, 'b is probed no more');

    // stop(): the in-flight probe of h is aborted (its connection closes) and nothing is probed again.
    await until(() => h.stats.open === 1, 'h probe in flight', WAIT_MS);
    checker.stop();
    assert.equal(clock.pending, 0, 'no probe waits any more');
    await until(() => h.stats.open === 0, 'h probe aborted', 1000);
    assert.equal(clock.pending, 0, 'the aborted probe scheduled no other');
    assert.equal(checker.status().size, 0);
    assert.equal(h.stats.accepted, 1);
  });
});
