// Active and passive health checks through the gateway: a killed target is skipped and comes back.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Gateway } from '../../src/index.ts';
import { ManualClock } from '../helpers/clock.ts';
import { nextEvent } from '../helpers/events.ts';
import { spawnGateway } from '../helpers/process.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close().catch(() => undefined))));

async function echo(name: string, port = 0): Promise<Backend> {
  const b = await startEchoBackend(name, port);
  backends.push(b);
  return b;
}

const yaml = (targets: Backend[], health: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [${targets.map((t) => `{ url: "${t.url}" }`).join(', ')}]
    healthCheck: ${health}
routes: [{ name: all, match: { path: / }, upstream: app }]
`;

/** Who answers the next `n` requests (status 200 only). */
async function answerers(port: number, n: number): Promise<Set<string>> {
  const names = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await request(port, '/');
    if (r.status === 200) names.add(json(r).name);
  }
  return names;
}

describe('active health checks', () => {
  /** The gateway's health verdict on `target` turning `healthy`, from the event stream. */
  const verdict = (gw: Gateway, target: Backend, healthy: boolean) =>
    nextEvent(
      'turnpike:target:health',
      gw.runtime.gateway,
      (e) => e.target === `app|${target.url}` && e.healthy === healthy,
      `${target.url} ${healthy ? 'healthy' : 'unhealthy'}`,
    );

  /** One round of probes on the gateway's clock: once every target's next probe is due (its last one came back), the clock moves past it. */
  async function probeRound(clock: ManualClock, targets: number, interval: number): Promise<void> {
    await clock.whenPending(targets, 'every target waiting for its next probe');
    clock.advance(interval * 1.1); // the interval is spread by ±10 %
  }

  test('a killed target stops getting requests after unhealthyThreshold failed probes and returns after healthyThreshold passes', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const clock = new ManualClock();
    const gw = await startGatewayYaml(
      yaml(
        [a, b],
        '{ active: { path: /healthz, interval: 100ms, timeout: 100ms, unhealthyThreshold: 2, healthyThreshold: 2 } }',
      ),
      { clock },
    );
    const bTarget = () => gw.runtime.current.upstreams.get('app')!.targets[1]!;
    try {
      assert.deepEqual(await answerers(gw.port(), 10), new Set(['a', 'b']));
      const port = b.port;
      await b.close();
      await probeRound(clock, 2, 100);
      await clock.whenPending(2, 'the first failed probe of b');
      assert.equal(bTarget().healthy, true, 'one failure is not unhealthyThreshold 2');
      const down = verdict(gw, b, false);
      await probeRound(clock, 2, 100);
      await down;
      assert.equal((await answerers(gw.port(), 6)).has('b'), false);
      // While it is down, no client request fails: the default retry of a connect failure covers the window,
      // and afterwards it is not picked at all.
      const statuses = new Set<number>();
      for (let i = 0; i < 20; i++) statuses.add((await request(gw.port(), '/')).status);
      assert.deepEqual(statuses, new Set([200]));
      await echo('b', port);
      await probeRound(clock, 2, 100);
      await clock.whenPending(2, 'the first passed probe of b');
      assert.equal(bTarget().healthy, false, 'one pass is not healthyThreshold 2');
      const up = verdict(gw, b, true);
      await probeRound(clock, 2, 100);
      await up;
      assert.ok((await answerers(gw.port(), 6)).has('b'), 'b back in rotation');
    } finally {
      await gw.stop();
    }
  });

  test('slowStart ramps a target that comes back up to its share instead of all at once', async (t) => {
    const a = await echo('a');
    const b = await echo('b');
    const clock = new ManualClock();
    const gw = await startGatewayYaml(
      yaml([a, b], '{ active: { interval: 50ms, unhealthyThreshold: 1, healthyThreshold: 1 }, slowStart: 2s }'),
      { clock },
    );
    const shareOfB = async (n: number) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (json(await request(gw.port(), '/')).name === 'b') hits++;
      return hits / n;
    };
    try {
      const port = b.port;
      await b.close();
      const down = verdict(gw, b, false);
      await probeRound(clock, 2, 50);
      await down;
      await echo('b', port);
      const up = verdict(gw, b, true);
      await probeRound(clock, 2, 50);
      await up;
      const early = await shareOfB(100);
      clock.advance(1000);
      const halfway = await shareOfB(200);
      clock.advance(1100);
      const late = await shareOfB(100);
      t.diagnostic(
        `b's share the moment it is back: ${(early * 100).toFixed(0)}%; halfway through slowStart (1 s of 2 s): ${(halfway * 100).toFixed(0)}%; after it: ${(late * 100).toFixed(0)}%`,
      );
      assert.equal(early, 0, 'no share the moment it is back');
      assert.ok(halfway > 0 && halfway < 0.5, `halfway ${halfway}`);
      assert.ok(late > 0.4, `late ${late}`);
    } finally {
      await gw.stop();
    }
  });

  test('an http check fails on a status outside expectStatus', async () => {
    const good = await echo('good');
    let sick = true;
    const flaky = await startBackend((req, res) => {
      if (req.url === '/healthz') {
        res.statusCode = sick ? 503 : 204;
        res.end();
        return;
      }
      res.end(JSON.stringify({ name: 'flaky' }));
    });
    backends.push(flaky);
    const gw = await startGatewayYaml(
      yaml(
        [good, flaky],
        '{ active: { path: /healthz, expectStatus: 200-299, interval: 50ms, unhealthyThreshold: 1, healthyThreshold: 1 } }',
      ),
    );
    try {
      await until(async () => !(await answerers(gw.port(), 6)).has('flaky'), 'flaky skipped');
      sick = false;
      await until(async () => (await answerers(gw.port(), 6)).has('flaky'), 'flaky back');
    } finally {
      await gw.stop();
    }
  });

  test('with workers, probes run once per instance (in the primary) and every worker follows its verdicts', async () => {
    let probes = 0;
    const probed = await startBackend((req, res) => {
      if (req.url === '/healthz') probes++;
      res.end(JSON.stringify({ name: 'probed' }));
    });
    backends.push(probed);
    const other = await echo('other');
    const gw = await spawnGateway(
      `workers: 2\n${yaml([probed, other], '{ active: { path: /healthz, interval: 100ms, unhealthyThreshold: 1, healthyThreshold: 1 } }')}`,
    );
    try {
      await sleep(300);
      probes = 0;
      await sleep(1000);
      const perSecond = probes;
      // One prober at 100 ms (± jitter) makes ~10 probes a second; one per worker would make ~20.
      assert.ok(perSecond >= 6 && perSecond <= 13, `${perSecond} probes in 1 s`);
      await probed.close();
      // Fresh connections (agent: false) reach both workers; none may land on the dead target once it is marked.
      await until(async () => {
        for (let i = 0; i < 10; i++) {
          const r = await request(gw.port(), '/', { agent: false });
          if (r.status !== 200 || json(r).name !== 'other') return false;
        }
        return true;
      }, 'both workers skip the dead target');
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });
});

describe('passive health checks', () => {
  test('a target failing real traffic is ejected, and never more than maxEjectedPercent of the pool', async () => {
    const ok = await echo('ok');
    const failing = await startBackend((_req, res) => {
      res.statusCode = 500;
      res.end(JSON.stringify({ name: 'failing' }));
    });
    const failing2 = await startBackend((_req, res) => {
      res.statusCode = 500;
      res.end(JSON.stringify({ name: 'failing2' }));
    });
    backends.push(failing, failing2);
    const gw = await startGatewayYaml(
      yaml([ok, failing, failing2], '{ passive: { consecutiveFailures: 3, ejectFor: 10s, maxEjectedPercent: 34% } }'),
    );
    try {
      for (let i = 0; i < 30; i++) await request(gw.port(), '/');
      const before = failing.requests.length + failing2.requests.length;
      const names = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const r = await request(gw.port(), '/');
        const n = json(r).name as string;
        names.set(n, (names.get(n) ?? 0) + 1);
      }
      // One of the two failing targets is ejected (34% of 3 allows one); the other still gets its share.
      const stillServing = ['failing', 'failing2'].filter((n) => (names.get(n) ?? 0) > 0);
      assert.equal(stillServing.length, 1, JSON.stringify([...names]));
      assert.ok(failing.requests.length + failing2.requests.length - before <= 15);
    } finally {
      await gw.stop();
    }
  });

  test('an ejected target comes back once ejectFor has passed, not before', async () => {
    const ok = await echo('ok');
    let broken = true;
    const flaky = await startBackend((_req, res) => {
      res.statusCode = broken ? 500 : 200;
      res.end(JSON.stringify({ name: 'flaky' }));
    });
    backends.push(flaky);
    const clock = new ManualClock();
    const gw = await startGatewayYaml(yaml([ok, flaky], '{ passive: { consecutiveFailures: 1, ejectFor: 10s } }'), {
      clock,
    });
    const ejection = (ejected: boolean) =>
      nextEvent(
        'turnpike:target:ejection',
        gw.runtime.gateway,
        (e) => e.target === flaky.url && e.ejected === ejected,
        `flaky ${ejected ? 'ejected' : 'back'}`,
      );
    try {
      const out = ejection(true);
      await answerers(gw.port(), 2); // round robin: one of two reaches flaky, whose failure ejects it
      await out;
      broken = false;
      clock.advance(9_999);
      assert.deepEqual(await answerers(gw.port(), 4), new Set(['ok']), 'still ejected before ejectFor');
      const back = ejection(false);
      clock.advance(2);
      await back;
      assert.deepEqual(await answerers(gw.port(), 4), new Set(['ok', 'flaky']));
    } finally {
      await gw.stop();
    }
  });
});
