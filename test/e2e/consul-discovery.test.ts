// Consul discovery in a running gateway, against the Consul stand-in (test/helpers/consul-stand-in.ts) and real
// backends: the targets follow the passing instances with the tag without a reload, each change delivered by
// the blocking query that was waiting (no refresh period); an agent that goes down keeps the last targets
// (counted); the token comes from ${CONSUL_TOKEN:-} and is redacted in /api/config; the admin API shows the
// source; an empty answer empties the pool only after emptyGrace. Real time: each step waits on its event.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startConsulStandIn, type ConsulInstance } from '../helpers/consul-stand-in.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { json, request, startEchoBackend, startGatewayYaml, type Backend, answerers } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const config = (address: string, grace = '30s') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  consul: { address: "${address}", token: "\${CONSUL_TOKEN:-}" }
upstreams:
  search: { discover: { consul: { service: search, tags: [v2] }, emptyGrace: ${grace} } }
routes: [{ name: all, match: { path: / }, upstream: search }]
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`;

const instance = (id: string, b: Backend, o: Partial<ConsulInstance> = {}): ConsulInstance => ({
  id,
  address: '127.0.0.1',
  port: b.port,
  tags: ['v2'],
  ...o,
});

test('the targets follow Consul through blocking queries; a down agent keeps them; token sent and redacted', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const consul = await startConsulStandIn({ token: 'consul-acl-token' });
  process.env.CONSUL_TOKEN = 'consul-acl-token';
  consul.set('search', [instance('a', a), instance('b', b, { tags: ['v1'] })]);
  const gw = await startGatewayYaml(config(consul.address));
  delete process.env.CONSUL_TOKEN;
  const round = (outcome: string, what: string, match: (e: StreamEvent) => boolean = () => true) =>
    nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === outcome && match(e), what);
  const targets = () => gw.runtime.current.upstreams.get('search')!.targets.map((t) => t.url);
  try {
    await until(() => targets().length === 1, 'the first Consul answer applied');
    assert.deepEqual(await answerers(gw.port(), 2), ['a', 'a'], 'b lacks the tag v2');

    // b gets the tag: the query blocked in Consul answers, and b takes traffic (no refresh period is involved).
    await consul.whenBlocked(1);
    const both = round('resolved', 'the round with b', (e) => (e.targets as string[]).length === 2);
    consul.set('search', [instance('a', a), instance('b', b, { weight: 3 })]);
    await both;
    assert.ok(consul.requests.at(-1)!.url.searchParams.has('index'), 'the change came through a blocking query');
    assert.deepEqual([...new Set(await answerers(gw.port(), 8))].sort(), ['a', 'b']);
    assert.deepEqual(
      gw.runtime.current.upstreams.get('search')!.targets.map((t) => [t.url, t.weight]),
      [
        [a.url, 1],
        [b.url, 3],
      ],
    );

    // a fails its check: it leaves the set and is drained.
    await consul.whenBlocked(1);
    const onlyB = round('resolved', 'the round without a', (e) => (e.targets as string[]).join() === b.url);
    consul.set('search', [instance('a', a, { status: 'critical' }), instance('b', b, { weight: 3 })]);
    await onlyB;
    const seenByA = a.requests.length;
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);
    assert.equal(a.requests.length, seenByA);

    // The agent goes down: the last set stays, the failure is counted; back up, the next round answers.
    const failed = round('error', 'the failing round');
    consul.down(true);
    await failed;
    assert.deepEqual(targets(), [b.url]);
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);
    const scraped = (await request(gw.admin!.port, '/metrics')).body;
    assert.match(scraped, /^turnpike_discovery_errors_total\{upstream="search"\} [1-9]\d*$/m);
    const back = round('resolved', 'the round after the agent is back', (e) => (e.targets as string[]).length === 2);
    consul.set('search', [instance('a', a), instance('b', b, { weight: 3 })]);
    consul.down(false);
    await back;
    assert.deepEqual([...new Set(await answerers(gw.port(), 8))].sort(), ['a', 'b']);

    // Where the targets came from, the token on every query, and the token hidden in the config dump.
    const listed = JSON.parse((await request(gw.admin!.port, '/api/upstreams')).body) as {
      upstreams: { name: string; targets: { url: string; source: string }[] }[];
    };
    assert.deepEqual(
      listed.upstreams.find((u) => u.name === 'search')!.targets.map((t) => t.source),
      ['consul search tags v2', 'consul search tags v2'],
    );
    assert.ok(consul.requests.every((r) => r.token === 'consul-acl-token'));
    const dumped = (await request(gw.admin!.port, '/api/config')).body;
    assert.doesNotMatch(dumped, /consul-acl-token/);
    assert.equal(json(await request(gw.admin!.port, '/api/config')).config.discovery.consul.token, '[redacted]');
  } finally {
    await gw.stop();
    await consul.close();
  }
});

test('an empty answer keeps the targets for emptyGrace, then empties the upstream', async () => {
  const a = await startEchoBackend('a');
  backends.push(a);
  const consul = await startConsulStandIn();
  consul.set('search', [instance('a', a)]);
  const gw = await startGatewayYaml(config(consul.address, '3s'));
  const targets = () => gw.runtime.current.upstreams.get('search')!.targets.map((t) => t.url);
  const empty = (what: string, match: (targets: string[]) => boolean) =>
    nextEvent(
      'turnpike:discovery',
      gw.runtime.gateway,
      (e) => e.outcome === 'empty' && match(e.targets as string[]),
      what,
      15_000,
    );
  try {
    await until(() => targets().length === 1, 'the first Consul answer applied');
    await consul.whenBlocked(1);
    const kept = empty('the empty answer within the grace', (t) => t.length === 1);
    const emptied = empty('the grace ending', (t) => t.length === 0);
    consul.set('search', [instance('a', a, { status: 'critical' })]);
    await kept;
    assert.deepEqual(await answerers(gw.port(), 1), ['a'], 'still used within the grace');
    await emptied;
    assert.deepEqual(targets(), []);
    assert.equal((await request(gw.port(), '/')).status, 503);
  } finally {
    await gw.stop();
    await consul.close();
  }
});
