// B05 (Envoy listener connection limits, overload manager; NGINX `limit_conn`): connection exhaustion, many idle TCP
// connections that send nothing. `limits.maxConnections` (per listener and process, 10,000 by default) and
// `limits.maxConnectionsPerClient` (off by default, as NGINX's limit_conn is) close a connection over either limit
// as soon as it is accepted, before reading a byte, and publish a refusal (protocol tcp, TP_CONNECTION_LIMIT) that
// the access log writes. Of the row's two behaviours Turnpike closes rather than leaving the excess in the accept
// backlog (HAProxy's way): a client learns at once, and the backlog stays free for the listener's other clients.
// The idle connections it did accept are closed at `headerTimeout` with 408. The other listener keeps answering,
// and so does the admin listener (its own server, outside the listeners' limits): /healthz and /metrics.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import type { StreamEvent } from '../helpers/events.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { request } from '../helpers/servers.ts';
import { openClient, openFds, type RawClient } from '../helpers/slow-clients.ts';
import { until } from '../helpers/wait.ts';

const MAX = scale(50, 1000);
const EXCESS = scale(100, 1000);
const PER_CLIENT = 5;

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;
const refusals: StreamEvent[] = [];
/** Every refusal published in this process (each test keeps to its gateway's). */
const onRefusal = (e: unknown) => void refusals.push(e as StreamEvent);
const of = (g: typeof gw, from: number) => refusals.slice(from).filter((e) => e.gateway === g.gateway.runtime.gateway);

before(async () => {
  backend = await startRecordingBackend();
  subscribe('turnpike:client:refused', onRefusal);
  gw = await startAttackGateway({
    upstream: backend.url,
    limits: `maxConnections: ${MAX}\nheaderTimeout: ${scale('2s', '10s')}\nmaxConnectionsPerClient: ${MAX}`,
    extra: 'admin: { address: 127.0.0.1, port: 0 }\nmetrics: { enabled: true }\n',
  });
});
after(async () => {
  unsubscribe('turnpike:client:refused', onRefusal);
  await gw.stop();
  await backend.close();
});

/** Sends one request on an open raw connection and resolves with the answer's status line. */
async function ask(c: RawClient, path: string): Promise<string> {
  const from = c.text().length;
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
  const text = await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t.slice(from)), `the answer to ${path}`);
  return text.slice(from, text.indexOf('\r\n', from));
}

test(`${MAX} idle connections are held, ${EXCESS} more are closed at once with a published refusal`, async () => {
  const fdsBefore = openFds();
  const start = refusals.length;
  const clients: RawClient[] = [];
  for (let i = 0; i < MAX + EXCESS; i++) clients.push(await openClient(gw.http, `127.0.0.${2 + (i % 50)}`));
  await until(() => of(gw, start).length >= EXCESS, `${EXCESS} refusals (have ${of(gw, start).length})`);
  const mine = of(gw, start);
  assert.equal(mine.length, EXCESS);
  for (const e of mine) {
    assert.equal(e.protocol, 'tcp');
    assert.equal(e.code, 'TP_CONNECTION_LIMIT');
    assert.equal(e.listener, 'web');
    assert.match(String(e.clientIp), /^127\.0\.0\.\d+$/);
  }
  await until(() => clients.filter((c) => c.closed()).length >= EXCESS, 'the excess connections to close');
  const refused = clients.filter((c) => c.closed());
  assert.equal(refused.length, EXCESS, 'exactly the excess was closed before the header timeout');
  for (const c of refused) assert.equal(c.text(), '', 'a refused connection gets no byte');
  const held = clients.filter((c) => !c.closed());
  assert.equal(held.length, MAX);
  // At the limit, an accepted connection is served.
  assert.match(await ask(held[0]!, '/public/held'), /^HTTP\/1\.1 200 /);
  // The other listener is not affected.
  const tls = tlsConnect({
    port: gw.https,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: gw.ca,
    ALPNProtocols: ['http/1.1'],
  });
  let tlsText = '';
  tls.on('data', (d: Buffer) => (tlsText += d.toString('latin1')));
  tls.write('GET /public/other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await new Promise((resolve) => tls.once('close', resolve));
  assert.match(tlsText, /^HTTP\/1\.1 200 /);
  // The health and metrics port still answers while the listener is full.
  const adminPort = gw.gateway.admin!.port;
  assert.equal((await request(adminPort, '/healthz')).status, 200);
  const metrics = await request(adminPort, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /turnpike_connections\{listener="web"/);
  // The held idle ones are closed at the header timeout with 408, and every descriptor is returned.
  for (const c of held.slice(1)) assert.match(await c.done, /^HTTP\/1\.1 408 /);
  held[0]!.socket.destroy();
  await until(() => openFds() <= fdsBefore + 10, `open fds back near ${fdsBefore} (now ${openFds()})`, 15_000);
  // The count went down with them: the listener accepts again.
  assert.equal((await request(gw.http, '/public/after')).status, 200);
});

describe('maxConnectionsPerClient', () => {
  let gw2: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => {
    gw2 = await startAttackGateway({ upstream: backend.url, limits: `maxConnectionsPerClient: ${PER_CLIENT}` });
  });
  after(() => gw2.stop());

  test(`${PER_CLIENT} connections from one address are served, the next one is closed at once; another address is served`, async () => {
    const start = refusals.length;
    const mine: RawClient[] = [];
    for (let i = 0; i < PER_CLIENT; i++) mine.push(await openClient(gw2.http, '127.0.0.77'));
    for (const c of mine) assert.match(await ask(c, '/public/mine'), /^HTTP\/1\.1 200 /);
    const over = await openClient(gw2.http, '127.0.0.77');
    assert.equal(await over.done, '');
    const other = await openClient(gw2.http, '127.0.0.78');
    assert.match(await ask(other, '/public/other'), /^HTTP\/1\.1 200 /);
    // One closes: that address may connect again.
    mine[0]!.socket.destroy();
    await mine[0]!.done;
    await until(async () => {
      const again = await openClient(gw2.http, '127.0.0.77');
      const ok = await ask(again, '/public/again').catch(() => '');
      again.socket.destroy();
      return /^HTTP\/1\.1 200 /.test(ok);
    }, 'a new connection from 127.0.0.77 to be served');
    for (const c of [...mine, other]) c.socket.destroy();
    const published = of(gw2, start);
    assert.ok(published.length >= 1);
    assert.ok(published.every((e) => e.clientIp === '127.0.0.77' && e.code === 'TP_CONNECTION_LIMIT'));
  });
});

describe('config of the connection limits', () => {
  const base = `
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:9" }] } }
`;
  const problem = (text: string) => {
    try {
      parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems[0]!;
    }
    assert.fail('expected the config to be rejected');
  };

  test('the defaults: 10,000 connections per listener, no per-client limit, 1000 requests per connection, 60 s body and send timeouts', () => {
    const config = parseConfigText(base, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
    assert.equal(config.limits.maxConnections, 10_000);
    assert.equal(config.limits.maxConnectionsPerClient, 0);
    assert.equal(config.limits.maxRequestsPerConnection, 1000);
    assert.equal(config.limits.bodyTimeout, 60_000);
    assert.equal(config.limits.sendTimeout, 60_000);
  });

  test('maxConnections must be a whole number of at least 1, at its key path', () => {
    const p = problem(`${base}limits: { maxConnections: 0 }\n`);
    assert.equal(p.code, 'TP_CONFIG_INVALID');
    assert.equal(p.path, 'limits.maxConnections');
    const q = problem(
      `listeners: [{ name: web, protocol: http, port: 8080, limits: { maxConnectionsPerClient: 1.5 } }]\n`,
    );
    assert.equal(q.path, 'listeners[0].limits.maxConnectionsPerClient');
  });

  test('bodyTimeout and sendTimeout are durations, also per route', () => {
    const p = problem(`${base}limits: { bodyTimeout: 5 }\n`);
    assert.equal(p.path, 'limits.bodyTimeout');
    assert.match(p.message, /write 5s or 5ms/);
    const q = problem(`${base}routes:\n  - upstream: app\n    limits: { sendTimeout: soon }\n`);
    assert.equal(q.path, 'routes[0].limits.sendTimeout');
  });
});
