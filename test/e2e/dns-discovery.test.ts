// DNS discovery in a running gateway: the targets of `discover: { dns: ... }` follow the DNS answers without a
// reload (a new record gets traffic, a removed one is drained), a SERVFAIL keeps the last targets, a reload that
// keeps the block keeps them, and the active health checks probe what was discovered. A DNS server of the test's
// own on UDP port 0, real backends; the refresh is driven by a manual clock, each round awaited on its event.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runRouteTests } from '../../src/route-tests/runner.ts';
import { ManualClock } from '../helpers/clock.ts';
import { startDnsServer } from '../helpers/dns-server.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import {
  quietLog,
  request,
  startEchoBackend,
  startGatewayYaml,
  tempDir,
  type Backend,
  answerers,
} from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const SRV = '_http._tcp.app.service.internal';
const config = (dns: string, extra = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  dns: { servers: ["${dns}"], minRefresh: 5s }
upstreams:
  app:
    discover: { dns: { srv: ${SRV} }, emptyGrace: 30s }
    healthCheck: { active: { path: /healthz, interval: 1h } }
routes: [{ name: all, match: { path: / }, upstream: app }]
accessLog: { enabled: false }
admin: { address: 127.0.0.1, port: 0 }
metrics: {}${extra}
`;

test('the targets follow the DNS answers without a reload; a SERVFAIL keeps them (and is counted); a reload keeps them', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const dns = await startDnsServer();
  const port = (backend: Backend) => Number(new URL(backend.url).port);
  dns.set(SRV, [{ type: 'SRV', target: 'a.internal', port: port(a) }]);
  dns.set('a.internal', [{ type: 'A', address: '127.0.0.1', ttl: 10 }]);
  dns.set('b.internal', [{ type: 'A', address: '127.0.0.1', ttl: 10 }]);
  const clock = new ManualClock();
  const gw = await startGatewayYaml(config(dns.address), { clock });
  const round = (outcome: string, what: string, match: (e: StreamEvent) => boolean = () => true) =>
    nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === outcome && match(e), what);
  const targets = () => gw.runtime.current.upstreams.get('app')!.targets.map((t) => t.url);
  try {
    // The first round runs as the gateway starts: nothing to subscribe to before it.
    await until(() => targets().length === 1, 'the first DNS answer applied');
    assert.deepEqual(await answerers(gw.port(), 2), ['a', 'a']);

    // The record moves to b: after the TTL (10 s, above minRefresh) the next round sends the traffic there.
    dns.set(SRV, [{ type: 'SRV', target: 'b.internal', port: port(b) }]);
    const moved = round('resolved', 'the round that finds b', (e) => (e.targets as string[]).includes(b.url));
    clock.advance(10_000);
    await moved;
    assert.deepEqual(targets(), [b.url], 'the removed record is drained out of the pool');
    const seenByA = a.requests.length;
    assert.deepEqual(await answerers(gw.port(), 3), ['b', 'b', 'b']);
    assert.equal(a.requests.length, seenByA, 'the drained target gets no new request');
    // The active check follows the live set: the discovered target is probed.
    await until(() => b.requests.some((r) => r.url === '/healthz'), 'a health probe of the discovered target');

    // A failing resolver: the last set stays in use.
    dns.set(SRV, 'SERVFAIL');
    const failed = round('error', 'the failing round');
    clock.advance(10_000);
    await failed;
    assert.deepEqual(targets(), [b.url]);
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);
    const scraped = (await request(gw.admin!.port, '/metrics')).body;
    assert.match(scraped, /^turnpike_discovery_errors_total\{upstream="app"\} 1$/m);
    // The admin API says where each target came from.
    const listed = JSON.parse((await request(gw.admin!.port, '/api/upstreams')).body) as {
      upstreams: { name: string; targets: { url: string; source: string }[] }[];
    };
    assert.deepEqual(
      listed.upstreams.find((u) => u.name === 'app')!.targets.map((t) => [t.url, t.source]),
      [[b.url, `dns srv ${SRV}`]],
    );

    // A reload with the same discover block keeps the loop and its targets (an unrelated change).
    writeFileSync(gw.file, config(dns.address, '\nlog: { level: info }'));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.deepEqual(targets(), [b.url]);
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);

    // The DNS answers again: the next round (minRefresh after the failure) finds a and b.
    dns.set(SRV, [
      { type: 'SRV', target: 'a.internal', port: port(a) },
      { type: 'SRV', target: 'b.internal', port: port(b) },
    ]);
    const back = round('resolved', 'the round after the failure', (e) => (e.targets as string[]).length === 2);
    clock.advance(5_000);
    await back;
    assert.deepEqual((await answerers(gw.port(), 4)).sort(), ['a', 'a', 'b', 'b']);
  } finally {
    await gw.stop();
    await dns.close();
  }
});

test('a reload that changes the discover block starts over from its targets; one that lists targets drains them', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  const c = await startEchoBackend('c');
  backends.push(a, b, c);
  const dns = await startDnsServer();
  const port = (backend: Backend) => Number(new URL(backend.url).port);
  dns.set(SRV, [{ type: 'SRV', target: 'a.internal', port: port(a) }]);
  dns.set('a.internal', [{ type: 'A', address: '127.0.0.1' }]);
  dns.set('app.internal', [{ type: 'A', address: '127.0.0.1' }]);
  const gw = await startGatewayYaml(config(dns.address), { clock: new ManualClock() });
  const targets = () => gw.runtime.current.upstreams.get('app')!.targets.map((t) => t.url);
  const upstream = (block: string) =>
    config(dns.address).replace(`discover: { dns: { srv: ${SRV} }, emptyGrace: 30s }`, block);
  try {
    await until(() => targets().length === 1, 'the first DNS answer applied');
    assert.deepEqual(targets(), [a.url]);

    const moved = nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === 'resolved', 'a: round');
    writeFileSync(gw.file, upstream(`discover: { dns: { a: app.internal, port: ${port(b)} } }`));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    await moved;
    assert.deepEqual(targets(), [b.url]);
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);

    writeFileSync(gw.file, upstream(`targets: [{ url: "${c.url}" }]`));
    assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
    assert.deepEqual(targets(), [c.url], 'the discovered target is drained');
    assert.deepEqual(await answerers(gw.port(), 2), ['c', 'c']);
  } finally {
    await gw.stop();
    await dns.close();
  }
});

test('route tests stub a discovered upstream with one target and never ask its source', async () => {
  const cases = join(tempDir(), 'routes.test.yaml');
  writeFileSync(
    cases,
    `cases:
  - name: users through a discovered upstream
    request: { url: "http://localhost/users/7" }
    expect: { route: users, status: 200, upstream: users, upstreamRequest: { path: /users/7 } }
`,
  );
  const example = join(import.meta.dirname, '..', '..', 'examples', 'discovery', 'turnpike.yaml');
  const report = await runRouteTests(example, cases, quietLog);
  assert.deepEqual(
    report.results.map((r) => r.failures),
    [[]],
  );
});
