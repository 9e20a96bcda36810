// D02's DNS part and U08's rebinding (SSRF guidance): "allow-list enforced after resolution and pinned for the
// connection (no rebinding)", "a name that DNS maps to 10.0.0.1", "rebinding to a forbidden range refused". An
// upstream discovered by name (`discover: { dns: { a: app.example, port } }`, a DNS stand-in on UDP port 0) with
// `allowNetworks` (one upstream) or `denyNetworks` (another): the name first answers an allowed address (used),
// then flips to 127.0.0.1, 169.254.169.254 and 10.0.0.1. The check runs on the resolved addresses, in the
// discovery loop, before the set is applied: a refused address is treated as if the answer lacked it (the last
// good target stays while something allowed remains or emptyGrace has not passed; then the upstream is empty:
// 503), logged once per change (TP_DISCOVERY_REFUSED) and counted (turnpike_discovery_refused_total). Pinning:
// discovered targets are IP origins, so every connection goes to the very address that was checked; nothing
// resolves the name again at connect time. A sentinel listener on 127.0.0.1 (the forbidden address, same port as
// the allowed backend on 127.0.0.2) must see no connection at all.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { ManualClock } from '../helpers/clock.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { assertProblem } from '../helpers/problem.ts';
import { json, request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

let dns: DnsServer;
let backend: Backend;
let sentinel: Server;
let touched = 0;

before(async () => {
  dns = await startDnsServer();
  backend = await startBackend(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'allowed' }));
    },
    0,
    '127.0.0.2',
  );
  sentinel = createServer((s) => {
    touched++;
    s.destroy();
  });
  sentinel.listen(backend.port, '127.0.0.1');
  await once(sentinel, 'listening');
});
after(async () => {
  await backend.close();
  sentinel.close();
  await dns.close();
});

const UPSTREAMS = ['allowed', 'denied'] as const;

test('a name that rebinds to 127.0.0.1, 169.254.169.254 or 10.0.0.1 is refused after resolution; nothing reaches them', async () => {
  const A = (...addresses: string[]) => addresses.map((address) => ({ type: 'A' as const, address, ttl: 5 }));
  dns.set('app.example', A('127.0.0.2'));
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const clock = new ManualClock();
  const gw = await startGatewayYaml(
    `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  dns: { servers: ["${dns.address}"], minRefresh: 5s }
upstreams:
  allowed:
    discover: { dns: { a: app.example, port: ${backend.port} }, allowNetworks: ["127.0.0.2/32"], emptyGrace: 20s }
  denied:
    discover:
      dns: { a: app.example, port: ${backend.port} }
      denyNetworks: ["127.0.0.1/32", "10.0.0.0/8", "169.254.0.0/16"]
      emptyGrace: 20s
routes:
  - { match: { path: /allowed }, upstream: allowed }
  - { match: { path: /denied }, upstream: denied }
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`,
    { clock, log },
  );
  const targets = (upstream: string) => gw.runtime.current.upstreams.get(upstream)!.targets.map((t) => t.url);
  /** Advances to the next round of both upstreams and returns their events. */
  const rounds = async (match: (e: StreamEvent) => boolean = () => true) => {
    const events = UPSTREAMS.map((u) =>
      nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.upstream === u && match(e), `${u}'s round`),
    );
    clock.advance(5_000);
    return Promise.all(events);
  };
  const answers = async () => {
    for (const u of UPSTREAMS) {
      const r = await request(gw.port(), `/${u}/x`);
      assert.equal(r.status, 200, `${u}: ${r.body}`);
      assert.equal(json(r).name, 'allowed');
    }
  };
  const refusedLines = () => lines.filter((l) => l.includes('"TP_DISCOVERY_REFUSED"')).map((l) => JSON.parse(l));
  const refusedCount = async (upstream: string) =>
    Number(
      new RegExp(`^turnpike_discovery_refused_total\\{upstream="${upstream}"\\} (\\d+)$`, 'm').exec(
        (await request(gw.admin!.port, '/metrics')).body,
      )?.[1] ?? 0,
    );
  const allowedOnly = () => {
    for (const u of UPSTREAMS) assert.deepEqual(targets(u), [backend.url], u);
  };
  try {
    await until(() => UPSTREAMS.every((u) => targets(u).length === 1), 'the first answers applied');
    allowedOnly();
    await answers();

    // The name rebinds to loopback: refused; it was the only record, so it is an empty answer under emptyGrace
    // and the checked address stays in use.
    dns.set('app.example', A('127.0.0.1'));
    for (const e of await rounds()) {
      assert.equal(e.outcome, 'empty');
      assert.deepEqual(e.refused, [`http://127.0.0.1:${backend.port}`]);
    }
    allowedOnly();
    await answers();
    assert.deepEqual(
      refusedLines().map((l) => [l.level, l.upstream, l.refused]),
      UPSTREAMS.map((u) => [40, u, [`http://127.0.0.1:${backend.port}`]]),
    );
    // The same refusal again: counted again, not logged again.
    await rounds();
    assert.equal(refusedLines().length, 2, 'logged once per change');
    for (const u of UPSTREAMS) assert.equal(await refusedCount(u), 2, u);

    // Beside the allowed address: only that one is applied.
    dns.set('app.example', A('169.254.169.254', '127.0.0.2', '10.0.0.1', '127.0.0.1'));
    for (const e of await rounds()) {
      assert.equal(e.outcome, 'resolved');
      assert.deepEqual(e.targets, [backend.url]);
      assert.equal((e.refused as string[]).length, 3);
    }
    allowedOnly();
    await answers();
    assert.equal(refusedLines().length, 4, 'a new refused set is logged');

    // Only forbidden addresses, past emptyGrace: the upstream empties (503) rather than use one of them.
    dns.set('app.example', A('169.254.169.254', '10.0.0.1', '127.0.0.1'));
    await rounds((e) => e.outcome === 'empty');
    allowedOnly();
    await answers();
    const emptied = UPSTREAMS.map((u) =>
      nextEvent(
        'turnpike:discovery',
        gw.runtime.gateway,
        (e) => e.upstream === u && (e.targets as string[]).length === 0,
        `${u} emptied`,
      ),
    );
    clock.advance(20_000);
    await Promise.all(emptied);
    for (const u of UPSTREAMS) {
      assert.deepEqual(targets(u), [], u);
      assertProblem(await request(gw.port(), `/${u}/x`), 503, 'TP_NO_HEALTHY_TARGET', ['127.0.0.', '169.254', '10.0']);
    }

    // The allowed address is back: used again.
    dns.set('app.example', A('127.0.0.2'));
    await rounds((e) => e.outcome === 'resolved');
    allowedOnly();
    await answers();
    assert.equal(touched, 0, 'a connection reached the forbidden address');
  } finally {
    await gw.stop();
  }
});
