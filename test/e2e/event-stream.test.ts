// The one event stream (`turnpike:*` diagnostics channels): what a request publishes from arrival to end, retries,
// cache and rate-limit decisions, reloads, and L4 sessions, which the access log now writes too.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closedPort } from '../helpers/ports.ts';
import { spawnGateway } from '../helpers/process.ts';
import { request, startBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

type Event = { channel: string; gateway?: unknown; requestId?: string; workerId?: number; [k: string]: unknown };

/** Records every event of the named channels published by `gateway` (other gateways of this process ignored). */
function record(names: string[], gateway: () => unknown): { events: Event[]; stop(): void } {
  const events: Event[] = [];
  const handlers = names.map((name) => {
    const fn = (message: unknown) => {
      const m = message as Event & { ctx?: { gateway: unknown } };
      if ((m.gateway ?? m.ctx?.gateway) !== gateway()) return;
      events.push({ ...m, channel: name });
    };
    subscribe(name, fn);
    return [name, fn] as const;
  });
  return { events, stop: () => handlers.forEach(([name, fn]) => unsubscribe(name, fn)) };
}

describe('request events', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let dead: number;

  before(async () => {
    backend = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end('ok');
    });
    dead = await closedPort();
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
  flaky:
    targets: [{ url: "http://127.0.0.1:${dead}" }, { url: "${backend.url}" }]
    balance: round-robin
    retries: { attempts: 2, on: [connect-failure] }
routes:
  - { name: plain, match: { path: /plain }, upstream: app }
  - { name: flaky, match: { path: /flaky }, upstream: flaky }
  - name: cached
    match: { path: /cached }
    upstream: app
    plugins: [{ cache: {} }]
  - name: limited
    match: { path: /limited }
    upstream: app
    plugins: [{ rate-limit: { limits: [{ requests: 1, per: 1m }] } }]
`);
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  test('a forwarded request publishes start, route, attempt start and end, and end, each with its request id and worker id', async () => {
    const rec = record(
      [
        'turnpike:request:start',
        'turnpike:request:route',
        'turnpike:attempt:start',
        'turnpike:attempt:end',
        'turnpike:request:end',
      ],
      () => gateway.runtime.gateway,
    );
    try {
      const r = await request(gateway.port('web'), '/plain', { headers: { 'x-request-id': 'req-events-1' } });
      assert.equal(r.status, 200);
      await until(() => rec.events.some((e) => e.channel === 'turnpike:request:end'), 'the request:end event');
      assert.deepEqual(
        rec.events.map((e) => e.channel),
        [
          'turnpike:request:start',
          'turnpike:request:route',
          'turnpike:attempt:start',
          'turnpike:attempt:end',
          'turnpike:request:end',
        ],
      );
      for (const e of rec.events) {
        assert.equal(e.requestId, 'req-events-1');
        assert.equal(e.workerId, 0);
      }
      const route = rec.events[1]!;
      assert.equal(route.route, 'plain');
      const attempt = rec.events[3]!;
      assert.equal(attempt.target, backend.url);
      assert.equal(attempt.status, 200);
      assert.equal(attempt.failure, null);
      assert.equal(typeof attempt.durationMs, 'number');
    } finally {
      rec.stop();
    }
  });

  test('a retry publishes the failed attempt (its failure kind) and the retry', async () => {
    const rec = record(['turnpike:attempt:end', 'turnpike:attempt:retry'], () => gateway.runtime.gateway);
    try {
      // Round robin: one of two requests starts on the dead target and is retried on the live one.
      for (let i = 0; i < 2; i++) assert.equal((await request(gateway.port('web'), '/flaky')).status, 200);
      const retry = rec.events.find((e) => e.channel === 'turnpike:attempt:retry');
      assert.ok(retry, 'a retry event');
      assert.equal(retry.kind, 'connect-failure');
      const failed = rec.events.find((e) => e.channel === 'turnpike:attempt:end' && e.failure !== null);
      assert.equal(failed?.failure, 'connect-failure');
      assert.equal(failed?.target, `http://127.0.0.1:${dead}`);
    } finally {
      rec.stop();
    }
  });

  test('the cache and a rate limit publish their decisions', async () => {
    const rec = record(['turnpike:cache', 'turnpike:ratelimit'], () => gateway.runtime.gateway);
    try {
      await request(gateway.port('web'), '/cached');
      await request(gateway.port('web'), '/cached');
      await request(gateway.port('web'), '/limited');
      await request(gateway.port('web'), '/limited');
      assert.deepEqual(
        rec.events.filter((e) => e.channel === 'turnpike:cache').map((e) => e.status),
        ['MISS', 'HIT'],
      );
      assert.deepEqual(
        rec.events.filter((e) => e.channel === 'turnpike:ratelimit').map((e) => e.allowed),
        [true, false],
      );
    } finally {
      rec.stop();
    }
  });

  test('a reload publishes whether it was applied or refused', async () => {
    const rec = record(['turnpike:reload'], () => gateway.runtime.gateway);
    const text = readFileSync(gateway.file, 'utf8');
    try {
      assert.equal((await gateway.reloader!.reload('test')).ok, true);
      writeFileSync(gateway.file, `${text}\nbogus: 1\n`);
      assert.equal((await gateway.reloader!.reload('test')).ok, false);
      assert.deepEqual(
        rec.events.map((e) => e.ok),
        [true, false],
      );
      assert.match(String(rec.events[1]!.error), /bogus/);
    } finally {
      writeFileSync(gateway.file, text);
      rec.stop();
    }
  });
});

describe('breaker transitions and ejections', () => {
  test('a breaker opening and a target ejected appear in the gateway log', async () => {
    const failing = await startBackend((_req, res) => {
      res.writeHead(500);
      res.end('down');
    });
    const gw = await spawnGateway(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  broken:
    targets: [{ url: "${failing.url}" }]
    circuitBreaker: { failureRatio: 50%, minimumRequests: 3, window: 1m, openFor: 1h }
  flaky:
    targets: [{ url: "${failing.url}" }, { url: "http://127.0.0.1:${await closedPort()}" }]
    healthCheck: { passive: { consecutiveFailures: 2, ejectFor: 1h, maxEjectedPercent: 50% } }
routes:
  - { match: { path: /broken }, upstream: broken }
  - { match: { path: /flaky }, upstream: flaky }
`);
    try {
      const port = gw.port('web');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(port, '/broken')).status);
      assert.deepEqual(statuses, [500, 500, 500, 503]);
      for (let i = 0; i < 4; i++) await request(port, '/flaky');
      const logged = (msg: string) =>
        gw.logLines
          .map((l) => JSON.parse(l) as { msg: string; upstream?: string; target?: string })
          .find((l) => l.msg === msg);
      const open = await until(() => logged('circuit breaker open'), 'the breaker line');
      assert.equal(open.upstream, 'broken');
      const ejected = await until(() => logged('target ejected (passive health)'), 'the ejection line');
      assert.equal(ejected.upstream, 'flaky');
    } finally {
      await gw.stop();
      await failing.close();
    }
  });
});

describe('L4 sessions in the access log', () => {
  let echo: Server;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  const logFile = join(tempDir(), 'access.log');

  before(async () => {
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    gateway = await startGatewayYaml(`
listeners: [{ name: tcp-in, protocol: tcp, address: 127.0.0.1, port: 0, upstream: echo }]
upstreams:
  echo: { targets: [{ url: "tcp://127.0.0.1:${(echo.address() as AddressInfo).port}" }] }
accessLog: { enabled: true, output: ${logFile} }
`);
  });

  after(async () => {
    echo.close();
  });

  test('a TCP session is access-logged with listener, client, upstream, target, bytes and duration', async () => {
    const rec = record(['turnpike:l4:open', 'turnpike:l4:close'], () => gateway.runtime.gateway);
    const socket = connect(gateway.port('tcp-in'), '127.0.0.1');
    socket.end('hello');
    let echoed = '';
    socket.on('data', (c: Buffer) => (echoed += c.toString()));
    await once(socket, 'close');
    assert.equal(echoed, 'hello');
    await until(() => rec.events.some((e) => e.channel === 'turnpike:l4:close'), 'the l4:close event');
    rec.stop();
    assert.deepEqual(
      rec.events.map((e) => e.channel),
      ['turnpike:l4:open', 'turnpike:l4:close'],
    );
    await gateway.stop();
    const line = JSON.parse(readFileSync(logFile, 'utf8').trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(line.listener, 'tcp-in');
    assert.equal(line.protocol, 'tcp');
    assert.equal(line.clientIp, '127.0.0.1');
    assert.equal(line.upstream, 'echo');
    assert.match(String(line.target), /127\.0\.0\.1/);
    assert.equal(line.bytesIn, 5);
    assert.equal(line.bytesOut, 5);
    assert.equal(typeof line.durationMs, 'number');
  });
});
