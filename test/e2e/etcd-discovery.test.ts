// etcd discovery in a running gateway, against a real etcd: a key registered under the service's prefix gets
// traffic without a reload, a deleted one is drained, and a stopped etcd keeps the last targets (the failure is
// counted); the admin API says where each target came from. Rounds are awaited on their turnpike:discovery events.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startEtcd } from '../helpers/etcd.ts';
import { nextEvent } from '../helpers/events.ts';
import { request, startEchoBackend, startGatewayYaml, type Backend, answerers } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

test('registered keys get traffic without a reload, a deleted one is drained, a stopped etcd keeps the last set', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const etcd = await startEtcd();
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  etcd: { endpoints: ["${etcd.url}"], prefix: /turnpike/services/ }
upstreams:
  payments: { discover: { etcd: { service: payments } } }
routes: [{ name: all, match: { path: / }, upstream: payments }]
accessLog: { enabled: false }
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`);
  const targets = () => gw.runtime.current.upstreams.get('payments')!.targets.map((t) => t.url);
  const round = (outcome: string, what: string, urls?: string[]) =>
    nextEvent(
      'turnpike:discovery',
      gw.runtime.gateway,
      (e) => e.outcome === outcome && (urls === undefined || JSON.stringify(e.targets) === JSON.stringify(urls)),
      what,
    );
  try {
    const first = round('resolved', 'a registered', [a.url]);
    await etcd.put('/turnpike/services/payments/a', JSON.stringify({ url: a.url }));
    await first;
    assert.deepEqual(await answerers(gw.port(), 2), ['a', 'a']);

    const both = round('resolved', 'b registered', [a.url, b.url]);
    await etcd.put('/turnpike/services/payments/b', JSON.stringify({ url: b.url }));
    await both;
    assert.deepEqual((await answerers(gw.port(), 4)).sort(), ['a', 'a', 'b', 'b']);

    const listed = JSON.parse((await request(gw.admin!.port, '/api/upstreams')).body) as {
      upstreams: { name: string; targets: { url: string; source: string }[] }[];
    };
    assert.deepEqual(
      listed.upstreams.find((u) => u.name === 'payments')!.targets.map((t) => [t.url, t.source]),
      [
        [a.url, 'etcd service payments'],
        [b.url, 'etcd service payments'],
      ],
    );

    const gone = round('resolved', 'a deleted', [b.url]);
    await etcd.del('/turnpike/services/payments/a');
    await gone;
    assert.deepEqual(targets(), [b.url], 'the deleted key is drained out of the pool');
    const seenByA = a.requests.length;
    assert.deepEqual(await answerers(gw.port(), 3), ['b', 'b', 'b']);
    assert.equal(a.requests.length, seenByA, 'the drained target gets no new request');

    // etcd goes away: the watch fails, the last set stays in use, the failure is counted.
    const failed = round('error', 'the failing round');
    await etcd.stop();
    await failed;
    assert.deepEqual(targets(), [b.url]);
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);
    await until(
      async () =>
        /^turnpike_discovery_errors_total\{upstream="payments"\} [1-9]/m.test(
          (await request(gw.admin!.port, '/metrics')).body,
        ),
      'the failure counted',
    );
  } finally {
    await gw.stop();
    await etcd.stop();
  }
});
