// Kubernetes discovery in a running gateway, against the API stand-in over HTTPS with a CA made here
// (test/helpers/kubernetes-stand-in.ts) and real backends: the targets follow the Service's ready endpoints
// without a reload, each change delivered by the watch; a 410 lists again; a refused list keeps the last targets
// (counted); the admin API shows the source; `kubernetes: {}` outside a pod is a logged failure with its code.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { TestPki } from '../helpers/certs.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { endpointSlice, startKubernetesStandIn } from '../helpers/kubernetes-stand-in.ts';
import { request, startEchoBackend, startGatewayYaml, tempDir, type Backend, answerers } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
const pki = new TestPki();
after(async () => {
  await Promise.all(backends.map((b) => b.close()));
  pki.remove();
});

const upstreams = `
upstreams:
  billing:  { discover: { kubernetes: { namespace: shop, service: billing, port: http } } }
routes: [{ name: all, match: { path: / }, upstream: billing }]
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`;

test('the targets follow the ready endpoints over an HTTPS watch; 410 lists again; a refused list keeps them', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const ca = pki.ca('Kubernetes Test CA');
  const cert = pki.server(ca, { names: ['localhost'] });
  const api = await startKubernetesStandIn({ token: 'sa-token', tls: { cert: cert.cert, key: cert.key } });
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), 'sa-token\n');
  const slice = (name: string, port: number, endpoints: { ip: string; ready?: boolean }[]) =>
    endpointSlice('billing', name, [{ name: 'http', port }], endpoints);
  api.apply('shop', slice('billing-a', a.port, [{ ip: '127.0.0.1' }]));
  const gw = await startGatewayYaml(
    `discovery:\n  kubernetes: { apiServer: "${api.url}", tokenFile: "${join(dir, 'token')}", caFile: "${ca.certPath}" }\n${upstreams}`,
  );
  const round = (outcome: string, what: string, match: (e: StreamEvent) => boolean = () => true) =>
    nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === outcome && match(e), what);
  const targets = () => gw.runtime.current.upstreams.get('billing')!.targets.map((t) => t.url);
  try {
    await until(() => targets().length === 1, 'the first list applied');
    assert.deepEqual(await answerers(gw.port(), 2), ['a', 'a']);

    // A second slice with b (ready) and one not ready: the watch delivers it, b takes traffic.
    await api.whenWatching(1);
    const both = round('resolved', 'the round with b', (e) => (e.targets as string[]).length === 2);
    api.apply('shop', slice('billing-b', b.port, [{ ip: '127.0.0.1' }, { ip: '127.0.0.2', ready: false }]));
    await both;
    assert.deepEqual([...new Set(await answerers(gw.port(), 4))].sort(), ['a', 'b']);

    // a is no longer ready: drained.
    const onlyB = round('resolved', 'the round without a', (e) => (e.targets as string[]).join() === b.url);
    api.apply('shop', slice('billing-a', a.port, [{ ip: '127.0.0.1', ready: false }]));
    await onlyB;
    assert.deepEqual(await answerers(gw.port(), 2), ['b', 'b']);

    // The history is compacted (an ERROR event 410): the provider lists again and finds a back.
    const lists = () => api.requests.filter((r) => !r.url.searchParams.has('watch')).length;
    const listed = lists();
    const back = round('resolved', 'the round after the 410', (e) => (e.targets as string[]).length === 2);
    api.compact('event');
    api.apply('shop', slice('billing-a', a.port, [{ ip: '127.0.0.1', ready: true }]));
    await back;
    assert.equal(lists(), listed + 1, 'listed again');

    // The token is refused from now on: the next list fails, the last set stays (counted), then it answers again.
    api.setToken('rotated');
    const failed = round('error', 'the refused list');
    api.compact('status');
    await failed;
    assert.deepEqual(targets().sort(), [a.url, b.url].sort());
    assert.deepEqual([...new Set(await answerers(gw.port(), 4))].sort(), ['a', 'b']);
    const scraped = (await request(gw.admin!.port, '/metrics')).body;
    assert.match(scraped, /^turnpike_discovery_errors_total\{upstream="billing"\} [1-9]\d*$/m);
    const again = round('resolved', 'the round with the new token');
    writeFileSync(join(dir, 'token'), 'rotated');
    await again;
    assert.ok(api.requests.every((r) => r.authorization === 'Bearer sa-token' || r.authorization === 'Bearer rotated'));

    const listedUpstreams = JSON.parse((await request(gw.admin!.port, '/api/upstreams')).body) as {
      upstreams: { name: string; targets: { url: string; source: string }[] }[];
    };
    assert.deepEqual(
      listedUpstreams.upstreams.find((u) => u.name === 'billing')!.targets.map((t) => t.source),
      ['kubernetes shop/billing:http', 'kubernetes shop/billing:http'],
    );
  } finally {
    await gw.stop();
    await api.close();
  }
});

test('kubernetes: {} outside a pod: a logged discovery failure with its code, the gateway runs on', async () => {
  const saved = [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT];
  delete process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_PORT;
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const gw = await startGatewayYaml(`discovery:\n  kubernetes: {}\n${upstreams}`, { log });
  try {
    await nextEvent('turnpike:discovery', gw.runtime.gateway, (e) => e.outcome === 'error', 'the failing round');
    const warned = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.code === 'TP_DISCOVERY_FAILED');
    assert.ok(warned, 'a TP_DISCOVERY_FAILED line');
    assert.match(String(warned.error), /not in a Kubernetes pod .*set discovery\.kubernetes\.apiServer/);
    assert.equal((await request(gw.port(), '/')).status, 503, 'the upstream has no target yet; the gateway answers');
  } finally {
    await gw.stop();
    if (saved[0] !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved[0];
    if (saved[1] !== undefined) process.env.KUBERNETES_SERVICE_PORT = saved[1];
  }
});
