// Upstream state outlives the snapshot: breakers and ejections survive reloads, targets come and go at run time,
// and every caller (WebSockets too) is counted on its target. Real backends; nothing waits for time to pass.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { parseConfig } from '../../src/index.ts';
import type { RequestContext } from '../../src/request-context.ts';
import { TargetRegistry } from '../../src/upstream/pool.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

async function echo(name: string): Promise<Backend> {
  const b = await startEchoBackend(name);
  backends.push(b);
  return b;
}

async function failing(name: string): Promise<Backend> {
  const b = await startBackend((_req, res) => {
    res.statusCode = 500;
    res.end(JSON.stringify({ name }));
  });
  backends.push(b);
  return b;
}

const yaml = (upstreams: string, routes = '[{ name: all, match: { path: / }, upstream: app }]') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
${upstreams}
routes: ${routes}
accessLog: { enabled: false }
`;

/** The names of the backends that answer `n` requests sent one after another. */
async function answerers(port: number, n: number, path = '/'): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(port, path);
    names.push(r.status === 200 ? (json(r).name as string) : String(r.status));
  }
  return names;
}

async function reload(gw: Awaited<ReturnType<typeof startGatewayYaml>>, text: string): Promise<void> {
  writeFileSync(gw.file, text);
  assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
}

const breaker = (openFor: string) =>
  `{ minimumRequests: 2, failureRatio: 0.5, window: 1m, openFor: ${openFor}, halfOpenRequests: 1 }`;

describe('circuit breaker across reloads', () => {
  test('reloading an unchanged config keeps an open circuit breaker open', async () => {
    const down = await failing('down');
    const config = yaml(`  app: { targets: [{ url: "${down.url}" }], circuitBreaker: ${breaker('1h')} }`);
    const gw = await startGatewayYaml(config);
    try {
      assert.deepEqual(await answerers(gw.port(), 3), ['500', '500', '503'], 'two failures open the breaker');
      await reload(gw, config);
      const after = await request(gw.port(), '/');
      assert.equal(after.status, 503);
      assert.equal(json(after).code, 'TP_CIRCUIT_OPEN');
      assert.equal(down.requests.length, 2, 'no request reached the failing upstream after the reload');
    } finally {
      await gw.stop();
    }
  });

  test('a changed circuitBreaker block starts a fresh breaker (an unchanged one beside it stays open)', async () => {
    const [one, two] = [await failing('one'), await failing('two')];
    const config = (twoOpenFor: string) =>
      yaml(
        `  one: { targets: [{ url: "${one.url}" }], circuitBreaker: ${breaker('1h')} }\n` +
          `  two: { targets: [{ url: "${two.url}" }], circuitBreaker: ${breaker(twoOpenFor)} }`,
        '[{ name: one, match: { path: /one }, upstream: one }, { name: two, match: { path: /two }, upstream: two }]',
      );
    const gw = await startGatewayYaml(config('1h'));
    try {
      assert.deepEqual(await answerers(gw.port(), 3, '/one'), ['500', '500', '503']);
      assert.deepEqual(await answerers(gw.port(), 3, '/two'), ['500', '500', '503']);
      await reload(gw, config('2h'));
      assert.equal(json(await request(gw.port(), '/one')).code, 'TP_CIRCUIT_OPEN', 'the unchanged breaker stays open');
      assert.deepEqual(
        await answerers(gw.port(), 1, '/two'),
        ['500'],
        'the changed breaker starts closed: the request reaches the upstream',
      );
      assert.deepEqual([one.requests.length, two.requests.length], [2, 3]);
    } finally {
      await gw.stop();
    }
  });
});

describe('outlier ejection across reloads', () => {
  test('an ejected target stays ejected across a reload, also when only its weight changed', async () => {
    const ok = await echo('ok');
    const bad = await failing('bad');
    const config = (badWeight: number) =>
      yaml(
        `  app:\n    targets: [{ url: "${ok.url}" }, { url: "${bad.url}", weight: ${badWeight} }]\n` +
          '    healthCheck: { passive: { consecutiveFailures: 1, ejectFor: 1h } }',
      );
    const gw = await startGatewayYaml(config(1));
    try {
      // Round robin: one of the first two requests reaches the failing target, which is then ejected.
      assert.ok((await answerers(gw.port(), 2)).includes('500'));
      assert.equal(bad.requests.length, 1);
      assert.deepEqual(await answerers(gw.port(), 4), ['ok', 'ok', 'ok', 'ok']);
      await reload(gw, config(1));
      assert.deepEqual(await answerers(gw.port(), 4), ['ok', 'ok', 'ok', 'ok'], 'after reloading the same config');
      await reload(gw, config(2));
      assert.deepEqual(
        await answerers(gw.port(), 4),
        ['ok', 'ok', 'ok', 'ok'],
        'after a reload that changed its weight',
      );
      assert.equal(bad.requests.length, 1);
    } finally {
      await gw.stop();
    }
  });
});

describe('targets changed at run time', () => {
  test('a target added at run time gets traffic, a drained one finishes in-flight requests and gets no new ones', async () => {
    let held: ServerResponse | null = null;
    const heldArrived = Promise.withResolvers<void>();
    const a = await startBackend((req, res) => {
      if (req.url === '/hold') {
        held = res;
        heldArrived.resolve();
        return;
      }
      res.end(JSON.stringify({ name: 'a', url: req.url }));
    });
    backends.push(a);
    const b = await echo('b');
    const gw = await startGatewayYaml(
      yaml(`  app:\n    targets: [{ url: "${a.url}" }]\n    healthCheck: { active: { path: /healthz, interval: 1h } }`),
    );
    try {
      const inFlight = request(gw.port(), '/hold');
      await heldArrived.promise;
      const pool = gw.runtime.current.upstreams.get('app')!;
      pool.addTarget({ url: b.url });
      // The active check follows the live set: the new target is probed.
      await until(() => b.requests.some((r) => r.url === '/healthz'), 'a health probe of the added target');
      assert.deepEqual((await answerers(gw.port(), 4)).sort(), ['a', 'a', 'b', 'b']);

      const seenByA = a.requests.length;
      let drained = false;
      const drain = pool.drainTarget(a.url)!.then(() => (drained = true));
      assert.deepEqual(await answerers(gw.port(), 4), ['b', 'b', 'b', 'b']);
      assert.equal(a.requests.length, seenByA, 'the drained target got no new request');
      assert.equal(drained, false, 'the drain waits for the request in flight');
      held!.end(JSON.stringify({ name: 'a', url: '/hold' }));
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(json(r).url, '/hold');
      await drain;
      assert.deepEqual(
        pool.targets.map((t) => t.url),
        [b.url],
      );
    } finally {
      (held as ServerResponse | null)?.end();
      await gw.stop();
    }
  });
});

describe('least-connections and WebSockets', () => {
  /** A backend that answers plain requests with its name and greets each WebSocket with it. */
  async function wsBackend(name: string): Promise<Backend> {
    const b = await echo(name);
    const wss = new WebSocketServer({ server: b.server });
    wss.on('connection', (ws) => ws.send(name));
    return b;
  }

  /** Opens a WebSocket through the gateway and resolves with it and the name of the backend that took it. */
  async function open(port: number): Promise<{ ws: WebSocket; name: string }> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const [message] = (await once(ws, 'message')) as [Buffer];
    return { ws, name: message.toString() };
  }

  test('least-connections spreads WebSockets: each counts on its target for its whole life', async () => {
    const [a, b] = [await wsBackend('a'), await wsBackend('b')];
    const gw = await startGatewayYaml(
      yaml(`  app: { balance: least-connections, targets: [{ url: "${a.url}" }, { url: "${b.url}" }] }`),
    );
    const sockets: WebSocket[] = [];
    try {
      const port = gw.port();
      const first = [];
      for (let i = 0; i < 6; i++) first.push(await open(port));
      sockets.push(...first.map((s) => s.ws));
      assert.deepEqual(first.map((s) => s.name).sort(), ['a', 'a', 'a', 'b', 'b', 'b'], 'six WebSockets split evenly');

      // Close a's three: b still holds three connections, so a is the less loaded target.
      const onA = first.filter((s) => s.name === 'a');
      await Promise.all(
        onA.map((s) => {
          s.ws.close();
          return once(s.ws, 'close');
        }),
      );
      const targetA = gw.runtime.current.upstreams.get('app')!.targets.find((t) => t.url === a.url)!;
      await until(() => targetA.active === 0, "the gateway to see a's WebSockets close");
      assert.deepEqual(
        await answerers(port, 4),
        ['a', 'a', 'a', 'a'],
        'plain requests go to the target without WebSockets',
      );
      const more = [];
      for (let i = 0; i < 3; i++) more.push(await open(port));
      sockets.push(...more.map((s) => s.ws));
      assert.deepEqual(
        more.map((s) => s.name),
        ['a', 'a', 'a'],
        'new WebSockets fill the less loaded target',
      );
    } finally {
      for (const ws of sockets) ws.terminate();
      await gw.stop();
    }
  });
});

describe('leases', () => {
  test('a lease counts its try on the target until it ends, and records a failure after a success (a reset mid-body) but nothing twice', async () => {
    const config = parseConfig(
      yaml(
        '  app: { targets: [{ url: "http://127.0.0.1:9" }, { url: "http://127.0.0.1:10" }], healthCheck: { passive: { consecutiveFailures: 2, ejectFor: 1h } } }',
      ),
    ).upstreams.app!;
    const registry = new TargetRegistry('a sticky secret of enough length');
    const pool = registry.build('app', config, '.');
    registry.commit([pool]);
    const ctx = {} as RequestContext; // round robin reads nothing of the request
    try {
      const first = pool.begin(ctx)!;
      const target = first.target;
      const other = pool.targets.find((t) => t !== target)!;
      assert.equal(target.active, 1);
      first.observe(false); // the head came
      first.observe(true); // then the body failed: one failure in a row
      first.observe(true); // the same failure reported again: ignored
      first.end();
      first.end();
      assert.equal(target.active, 0);
      assert.equal(pool.usableCount, 2, 'one failure in a row does not eject at consecutiveFailures 2');
      const second = pool.begin(ctx, other)!;
      assert.equal(second.target, target);
      second.observe(true);
      second.end();
      assert.deepEqual(
        pool.state.usable.map((t) => t.url),
        [other.url],
        'the second failure in a row ejects it',
      );
    } finally {
      await registry.closeAll();
    }
  });
});
