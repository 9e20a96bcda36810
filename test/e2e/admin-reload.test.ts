// The admin listener follows a reload: a new admin.address/admin.port is bound beside the old listener, then the
// old one stops accepting, answers what it was answering (the POST /api/reload that moved it) and ends its event
// streams; a taken port fails the reload and the old listener keeps serving; adding `admin:` starts it, removing
// it closes it; tokens and metrics follow the config. In one process and in a multi-worker primary.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { request, startGatewayYaml } from '../helpers/servers.ts';
import { openStream } from '../helpers/sse.ts';
import { until } from '../helpers/wait.ts';

const TOKEN_1 = 'first-admin-token-0123';
const TOKEN_2 = 'second-admin-token-4567';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A config with one listener answering `body`, and `admin` (a YAML line, or '') after it. */
function config(admin: string, body = 'hi', extra = ''): string {
  return `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }${extra}]
routes: [{ name: hello, match: { path: / }, respond: { body: ${body} } }]
${admin}
accessLog: { enabled: false }
`;
}

/** True when nothing accepts connections on `port` any more. */
async function refused(port: number): Promise<boolean> {
  try {
    await request(port, '/healthz', { agent: false });
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

/** Something else holding a port on 127.0.0.1, so the gateway cannot bind it. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, server };
}

describe('admin reload, one process', () => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  let gw: Gateway & { file: string };
  let portA: number;
  /** Where the admin listener is now. */
  let current: number;

  before(async () => {
    portA = await freePort();
    gw = await startGatewayYaml(config(`admin: { address: 127.0.0.1, port: ${portA} }`), { log });
    current = portA;
  });

  after(async () => {
    await gw.stop();
  });

  test('a new port: bound, then the old listener answers the POST /api/reload, ends its event stream and refuses', async () => {
    const stream = await openStream(portA, '/api/events');
    const ended = once(stream.res, 'end');
    const portB = await freePort();
    writeFileSync(gw.file, config(`admin: { address: 127.0.0.1, port: ${portB} }`));
    const r = await request(portA, '/api/reload', { method: 'POST' });
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).ok, true);
    assert.equal(r.headers.connection, 'close', 'the old listener keeps no connection open');
    await ended; // the server ended the stream: nothing holds the old listener open
    await until(
      () => lines.some((l) => l.includes('"msg":"admin listener closed"') && l.includes(`"port":${portA}`)),
      'the old admin listener to close',
    );
    assert.equal((await request(portB, '/healthz')).status, 200);
    assert.ok(await refused(portA), `port ${portA} still accepts`);
    assert.equal(gw.admin?.port, portB);
    current = portB;
  });

  test('tokens follow the config; the listener stays when its address and port do not change', async () => {
    const before = gw.admin;
    const admin = (token: string) => `admin: { address: 127.0.0.1, port: ${current}, auth: { tokens: ["${token}"] } }`;
    writeFileSync(gw.file, config(admin(TOKEN_1)));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.equal(gw.admin, before, 'same address and port: same listener');
    assert.equal((await request(current, '/api/upstreams')).status, 401);
    assert.equal((await request(current, '/api/upstreams', { headers: bearer(TOKEN_1) })).status, 200);
    writeFileSync(gw.file, config(admin(TOKEN_2)));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.equal((await request(current, '/api/upstreams', { headers: bearer(TOKEN_1) })).status, 401);
    assert.equal((await request(current, '/api/upstreams', { headers: bearer(TOKEN_2) })).status, 200);
  });

  test('a taken port fails the whole reload and the running admin listener keeps serving', async () => {
    const taken = await occupy();
    try {
      writeFileSync(gw.file, config(`admin: { address: 127.0.0.1, port: ${taken.port} }`, 'changed'));
      const result = await gw.reloader!.reload('test');
      assert.equal(result.ok, false);
      assert.match(
        result.error ?? '',
        new RegExp(`admin listener cannot bind 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE`),
      );
      assert.ok(lines.some((l) => l.includes('config reload failed') && l.includes('TP_LISTEN_FAILED')));
      assert.equal((await request(gw.port(), '/')).body, 'hi', 'the rest of the config did not apply either');
      assert.equal((await request(current, '/healthz')).status, 200);
      assert.equal(gw.admin?.port, current);
    } finally {
      taken.server.close();
    }
  });

  test('a reload failing after the new admin port was bound closes it again', async () => {
    const taken = await occupy();
    const portD = await freePort();
    try {
      // The admin port binds; the new public listener's port does not.
      const listener = `, { name: more, protocol: http, address: 127.0.0.1, port: ${taken.port} }`;
      writeFileSync(gw.file, config(`admin: { address: 127.0.0.1, port: ${portD} }`, 'hi', listener));
      const result = await gw.reloader!.reload('test');
      assert.equal(result.ok, false);
      assert.ok(await refused(portD), `port ${portD} still accepts`);
      assert.equal((await request(current, '/healthz')).status, 200);
    } finally {
      taken.server.close();
    }
  });

  test('removing admin: closes it, adding it back starts it, with metrics turned on and off', async () => {
    // The dashboard's numbers are kept only while there is an admin listener to show them.
    const counted = () => gw.runtime.dashboardStats.summary().routes.find((r) => r.route === 'hello')?.requests ?? 0;
    writeFileSync(gw.file, config(''));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.ok(await refused(current));
    assert.equal(gw.admin, null);
    const before = counted();
    await request(gw.port(), '/'); // not counted: no admin listener
    const portE = await freePort();
    writeFileSync(gw.file, config(`admin: { address: 127.0.0.1, port: ${portE} }\nmetrics: {}`));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    current = portE;
    await request(gw.port(), '/');
    await until(() => counted() > before, 'the dashboard to count again');
    assert.equal(counted(), before + 1, 'the request made without an admin listener was not counted');
    await until(async () => {
      const metrics = await request(portE, '/metrics');
      assert.equal(metrics.status, 200);
      return /^turnpike_requests_total\{route="hello",method="GET",status="2xx"\} 1$/m.test(metrics.body);
    }, 'the metrics to count the request');
    writeFileSync(gw.file, config(`admin: { address: 127.0.0.1, port: ${portE} }\nmetrics: { enabled: false }`));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.equal((await request(portE, '/metrics')).status, 404);
  });
});

describe('admin reload, workers (the CLI)', () => {
  let gw: GatewayProcess;
  let portA: number;
  let portB: number;

  const workersConfig = (admin: string, extra = '') => `workers: 2\n${config(admin)}\n${extra}`;
  /** The primary's "config reloaded" lines (each worker logs one too). */
  const primaryReloads = () =>
    gw.logLines.filter((l) => l.includes('"msg":"config reloaded"') && JSON.parse(l).pid === gw.pid).length;

  before(async () => {
    portA = await freePort();
    gw = await spawnGateway(workersConfig(`admin: { address: 127.0.0.1, port: ${portA} }`), { listeners: 2 });
    await untilWorkersStarted(gw);
  });

  after(async () => {
    assert.equal(await gw.stop(), 0);
  });

  test('SIGHUP with a new port, tokens and metrics: the primary moves its admin listener', async () => {
    assert.equal((await request(portA, '/metrics')).status, 404, 'metrics are off to begin with');
    portB = await freePort();
    const reloads = primaryReloads();
    writeFileSync(
      gw.file,
      workersConfig(`admin: { address: 127.0.0.1, port: ${portB}, auth: { tokens: ["${TOKEN_1}"] } }`, 'metrics: {}'),
    );
    gw.child.kill('SIGHUP');
    await until(() => primaryReloads() > reloads, 'the primary to report the reload', 10_000);
    assert.equal((await request(portB, '/healthz')).status, 200);
    assert.ok(await refused(portA), `port ${portA} still accepts`);
    assert.equal((await request(portB, '/api/upstreams')).status, 401);
    assert.equal((await request(portB, '/api/upstreams', { headers: bearer(TOKEN_1) })).status, 200);
    await request(gw.port('web'), '/', { agent: false });
    // The workers report about once a second.
    await until(
      async () =>
        /^turnpike_requests_total\{route="hello",method="GET",status="2xx"\} 1$/m.test(
          (await request(portB, '/metrics')).body,
        ),
      'the metrics of the request',
      10_000,
    );
  });

  test('POST /api/reload to a taken port fails, answers the error, and the admin listener keeps serving', async () => {
    const taken = await occupy();
    try {
      writeFileSync(
        gw.file,
        workersConfig(`admin: { address: 127.0.0.1, port: ${taken.port}, auth: { tokens: ["${TOKEN_1}"] } }`),
      );
      const r = await request(portB, '/api/reload', { method: 'POST', headers: bearer(TOKEN_1) });
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body);
      assert.equal(body.ok, false);
      assert.match(body.error, new RegExp(`admin listener cannot bind 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE`));
      assert.ok(gw.logLines.some((l) => l.includes('config reload failed') && l.includes('TP_LISTEN_FAILED')));
      assert.equal((await request(portB, '/healthz')).status, 200);
      assert.equal((await request(portB, '/api/upstreams', { headers: bearer(TOKEN_1) })).status, 200);
    } finally {
      taken.server.close();
    }
  });
});
