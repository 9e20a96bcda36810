// U08 (nginx http_resolver*.t): an upstream found by name (`discover: { dns: { a: NAME, port } }`) asked of a DNS
// stand-in on UDP port 0 (test/helpers/dns-server.ts) that a test toggles to NXDOMAIN, SERVFAIL, silence (DROP:
// the resolver's `discovery.dns.timeout` applies), an answer that flips to another IP, and back. With a last good
// set it stays in use (requests keep working, failures are counted in turnpike_discovery_errors_total, NXDOMAIN
// empties the upstream only after emptyGrace); with none (the first resolution fails) requests get 503
// TP_NO_HEALTHY_TARGET at once, naming neither the name nor an address; the event loop keeps turning while the DNS
// drops packets (monitorEventLoopDelay in this process, where the gateway runs: max lag a quarter of the silence,
// see the assertion for why not the catalogue's 50 ms); a flip moves traffic to the new IP and drains the old (a request in flight there finishes); answers
// again, it recovers. A static target by a name that does not resolve (undici asks the system resolver, not the
// stand-in) is 502 TP_UPSTREAM_UNAVAILABLE without the resolver's words. Rounds run on a ManualClock, each
// awaited on its turnpike:discovery event. The rebinding part of the row is dns-rebinding.test.ts (with D02).
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { ManualClock } from '../helpers/clock.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { assertProblem } from '../helpers/problem.ts';
import { json, request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

let dns: DnsServer;
let a: Backend;
let b: Backend;
/** Requests to a's /slow wait here until the test lets them answer. */
const held: ServerResponse[] = [];

before(async () => {
  dns = await startDnsServer();
  const named = (name: string) => (req: { url?: string }, res: ServerResponse) => {
    if (req.url === '/slow' && name === 'a') return void held.push(res);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name }));
  };
  // The same port on two loopback addresses: the A record moves, the configured port stays.
  a = await startBackend(named('a'));
  b = await startBackend(named('b'), a.port, '127.0.0.2');
});
after(async () => {
  await a.close();
  await b.close();
  await dns.close();
});

const config = (upstreams: string, routes: string, timeout = '300ms') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  dns: { servers: ["${dns.address}"], minRefresh: 5s, timeout: ${timeout} }
upstreams:
${upstreams}
routes: [${routes}]
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`;

const who = async (port: number, path = '/x') => {
  const r = await request(port, path);
  return r.status === 200 ? (json(r).name as string) : String(r.status);
};

/** What a problem body must not name: the DNS server, the names, any backend address. */
const secrets = () => [dns.address, 'app.example', 'first.example', '127.0.0.', 'SERVFAIL', 'ETIMEOUT', 'ENOTFOUND'];

test('with a last good set: SERVFAIL and silence keep it (counted), a flip moves and drains, NXDOMAIN waits out emptyGrace, then recovery', async () => {
  dns.set('app.example', [{ type: 'A', address: '127.0.0.1', ttl: 5 }]);
  const clock = new ManualClock();
  const gw = await startGatewayYaml(
    config(
      `  app: { discover: { dns: { a: app.example, port: ${a.port} }, emptyGrace: 20s } }`,
      '{ match: { path: / }, upstream: app }',
      '1s', // the silent round lasts about that long (real time): the requests below come well within it
    ),
    { clock },
  );
  const round = (outcome: string, what: string, match: (e: StreamEvent) => boolean = () => true) =>
    nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === outcome && match(e), what);
  const targets = () => gw.runtime.current.upstreams.get('app')!.targets.map((t) => t.url);
  const errors = async () =>
    /^turnpike_discovery_errors_total\{upstream="app"\} (\d+)$/m.exec(
      (await request(gw.admin!.port, '/metrics')).body,
    )?.[1];
  try {
    await until(() => targets().length === 1, 'the first answer applied');
    assert.equal(await who(gw.port()), 'a');

    // SERVFAIL: the round fails, the last set stays, the failure is counted.
    dns.set('app.example', 'SERVFAIL');
    const failed = round('error', 'the SERVFAIL round');
    clock.advance(5_000);
    await failed;
    assert.deepEqual(targets(), [a.url]);
    assert.equal(await who(gw.port()), 'a');
    assert.equal(await errors(), '1');

    // Silence: the round waits for the resolver's timeout (real time: c-ares's), requests go on meanwhile and the
    // event loop is not held up by the wait.
    dns.set('app.example', 'DROP');
    const queried = dns.queries.length;
    const dropped = round('error', 'the round the DNS does not answer');
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    clock.advance(5_000); // the retry after a failure: minRefresh
    let settled = false;
    void dropped.finally(() => (settled = true));
    // A few requests while the round waits (not a busy loop: a loaded loop's own pauses are not the DNS's).
    const during: string[] = [];
    for (let i = 0; i < 10; i++) during.push(await who(gw.port()));
    assert.equal(settled, false, 'the requests came while the DNS was silent');
    await dropped;
    lag.disable();
    assert.ok(dns.queries.length > queried, 'the round asked the DNS');
    assert.ok(during.length > 0 && during.every((n) => n === 'a'), `requests during the silence: ${during}`);
    // The histogram records whole timer intervals: the lag is what exceeds the 10 ms resolution. A resolver that
    // held the loop would hold it for the silence (the 1 s timeout, two 500 ms tries); the bound is a quarter of
    // that, not the catalogue's 50 ms: on a machine busy with other processes the scheduler alone pauses this one
    // for tens of ms (73 ms seen under a load of 11 on 2 cores), which says nothing about the DNS.
    const maxLagMs = lag.max / 1e6 - 10;
    assert.ok(maxLagMs < 250, `event loop lag ${maxLagMs.toFixed(1)} ms while the DNS is silent`);
    assert.equal(await errors(), '2');

    // The answer flips to 127.0.0.2 while a request is in flight to 127.0.0.1: new requests go to b, the one in
    // flight finishes on a (drained, not cut).
    const slow = request(gw.port(), '/slow');
    await until(() => held.length === 1, 'the slow request at a');
    dns.set('app.example', [{ type: 'A', address: '127.0.0.2', ttl: 5 }]);
    const flipped = round('resolved', 'the round that finds 127.0.0.2', (e) => (e.targets as string[]).includes(b.url));
    clock.advance(5_000);
    await flipped;
    assert.deepEqual(targets(), [b.url]);
    const seenByA = a.requests.length;
    assert.deepEqual([await who(gw.port()), await who(gw.port()), await who(gw.port())], ['b', 'b', 'b']);
    assert.equal(a.requests.length, seenByA, 'the old address gets no new request');
    held.shift()!.end(JSON.stringify({ name: 'a', slow: true }));
    const finished = await slow;
    assert.equal(finished.status, 200);
    assert.deepEqual(json(finished), { name: 'a', slow: true });

    // NXDOMAIN: an empty answer, not a failure; the last set stays until it has lasted emptyGrace (20s).
    dns.set('app.example', 'NXDOMAIN');
    const empty = round('empty', 'the first NXDOMAIN round');
    clock.advance(5_000);
    assert.deepEqual((await empty).targets, [b.url], 'still there within the grace');
    assert.equal(await who(gw.port()), 'b');
    const emptied = round('empty', 'the round that ends the grace', (e) => (e.targets as string[]).length === 0);
    clock.advance(20_000);
    await emptied;
    const gone = await request(gw.port(), '/x');
    assertProblem(gone, 503, 'TP_NO_HEALTHY_TARGET', secrets());
    assert.equal(await errors(), '2', 'an empty answer is not a failure');

    // The DNS answers again: the next round brings the target back.
    dns.set('app.example', [{ type: 'A', address: '127.0.0.1', ttl: 5 }]);
    const back = round('resolved', 'the recovery round', (e) => (e.targets as string[]).length === 1);
    clock.advance(5_000);
    await back;
    assert.equal(await who(gw.port()), 'a');
  } finally {
    await gw.stop();
  }
});

test('without a last good set: 503 problem+json at once, naming nothing; recovery when the DNS answers', async () => {
  dns.set('first.example', 'SERVFAIL');
  dns.set('silent.example', 'DROP');
  const clock = new ManualClock();
  // Both first rounds start as the gateway does: listen before it starts (the gateway is not known yet).
  const failures = new Set<string>();
  let firstFailures!: () => void;
  const bothFailed = new Promise<void>((resolve) => (firstFailures = resolve));
  const onRound = (m: unknown) => {
    const e = m as { upstream: string; outcome: string };
    if (e.outcome === 'error') failures.add(e.upstream);
    if (failures.has('first') && failures.has('silent')) firstFailures();
  };
  subscribe('turnpike:discovery', onRound);
  const gw = await startGatewayYaml(
    config(
      [
        `  first: { discover: { dns: { a: first.example, port: ${a.port} } } }`,
        `  silent: { discover: { dns: { a: silent.example, port: ${a.port} } } }`,
      ].join('\n'),
      '{ match: { path: /first }, upstream: first }, { match: { path: /silent }, upstream: silent }',
      '1s', // the silent first round lasts that long (real time): the first request comes well within it
    ),
    { clock },
  );
  try {
    // While the DNS is still silent (its round waits for the resolver timeout), a request does not wait for it.
    assertProblem(await request(gw.port(), '/silent'), 503, 'TP_NO_HEALTHY_TARGET', secrets());
    assert.equal(failures.has('silent'), false, 'answered before the silent round gave up');
    await bothFailed;
    for (const path of ['/first', '/silent'])
      assertProblem(await request(gw.port(), path), 503, 'TP_NO_HEALTHY_TARGET', [...secrets(), 'silent.example']);

    dns.set('first.example', [{ type: 'A', address: '127.0.0.1' }]);
    dns.set('silent.example', [{ type: 'A', address: '127.0.0.2' }]);
    const answered = (upstream: string) =>
      nextEvent(
        'turnpike:discovery',
        gw.runtime.gateway,
        (e) => e.upstream === upstream && e.outcome === 'resolved',
        `${upstream} answered`,
      );
    const rounds = [answered('first'), answered('silent')];
    clock.advance(5_000);
    await Promise.all(rounds);
    assert.equal(await who(gw.port(), '/first'), 'a');
    assert.equal(await who(gw.port(), '/silent'), 'b');
  } finally {
    unsubscribe('turnpike:discovery', onRound);
    await gw.stop();
  }
});

test('a static target by a name that does not resolve: 502 problem+json, without the resolver error', async () => {
  const gw = await startGatewayYaml(
    config(
      '  named: { targets: [{ url: "http://name.invalid:1234" }], retries: { attempts: 2, backoff: 0ms } }',
      '{ match: { path: / }, upstream: named }',
    ),
  );
  try {
    const r = await request(gw.port(), '/x');
    assertProblem(r, 502, 'TP_UPSTREAM_UNAVAILABLE', ['name.invalid', 'ENOTFOUND', 'EAI_AGAIN', 'getaddrinfo']);
  } finally {
    await gw.stop();
  }
});
