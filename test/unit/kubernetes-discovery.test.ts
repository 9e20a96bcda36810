// Kubernetes discovery without a gateway: which endpoints a set of EndpointSlices gives (ready only, the port by
// name or number), where the API is (settings, else the pod's service account and environment), and the
// provider's rounds against the API stand-in: list, then watch events; 410 Gone (an event or a status) lists
// again; a watch the server ends is opened again from the last resourceVersion; the token is read at each list.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { discover, discoverySettings } from '../../src/config/discovery-schema.ts';
import { connection, kubernetesProvider, sliceTargets, type EndpointSlice } from '../../src/discovery/kubernetes.ts';
import { endpointSlice, startKubernetesStandIn } from '../helpers/kubernetes-stand-in.ts';
import { tempDir } from '../helpers/servers.ts';

const PORTS = [
  { name: 'http', port: 8080 },
  { name: 'metrics', port: 9090 },
];

test('the ready endpoints of the slices at the port named (or numbered); ready unset counts as ready', () => {
  const slices = [
    endpointSlice('billing', 'billing-a', PORTS, [
      { ip: '10.0.0.1', ready: true },
      { ip: '10.0.0.2', ready: false },
      { ip: '10.0.0.3' },
    ]),
    endpointSlice('billing', 'billing-b', [{ name: 'http', port: 8081 }], [{ ip: 'fd00::4' }]),
    endpointSlice('billing', 'billing-c', [{ name: 'grpc', port: 9000 }], [{ ip: '10.0.0.5' }]),
  ] as EndpointSlice[];
  assert.deepEqual(
    sliceTargets(slices, 'http', 'http').map((t) => t.url),
    ['http://10.0.0.1:8080', 'http://10.0.0.3:8080', 'http://[fd00::4]:8081'],
  );
  assert.deepEqual(
    sliceTargets(slices, 9090, 'https').map((t) => t.url),
    ['https://10.0.0.1:9090', 'https://10.0.0.3:9090'],
  );
  assert.deepEqual(sliceTargets(slices, 'admin', 'http'), [], 'no slice has the port');
  assert.ok(sliceTargets(slices, 'http', 'http').every((t) => t.weight === 1 && !t.backup));
});

test('the API server: the settings, else the pod (KUBERNETES_SERVICE_HOST/PORT); outside a pod a clear failure', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), 'abc\n');
  writeFileSync(join(dir, 'ca.pem'), 'PEM');
  const s = (o: object) => discoverySettings.parse({ kubernetes: o }).kubernetes;
  assert.deepEqual(connection(s({ apiServer: 'http://127.0.0.1:8001' }), {}, dir), {
    apiServer: 'http://127.0.0.1:8001',
    token: '',
    ca: undefined,
  });
  assert.deepEqual(
    connection(
      s({ tokenFile: 'token', caFile: 'ca.pem' }),
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
      dir,
    ),
    {
      apiServer: 'https://[fd00::1]:443',
      token: 'abc',
      ca: 'PEM',
    },
  );
  assert.throws(() => connection(s({}), {}, dir), /not in a Kubernetes pod .*set discovery\.kubernetes\.apiServer/);
  assert.throws(() => connection(s({ apiServer: 'http://x', tokenFile: 'missing' }), {}, dir), /ENOENT/);
});

test('list, then the watch: each round answers a change; 410 lists again; an ended watch resumes', async () => {
  const dir = tempDir();
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'one');
  const api = await startKubernetesStandIn({ token: 'one' });
  const settings = discoverySettings.parse({ kubernetes: { apiServer: api.url, tokenFile } });
  const resolve = kubernetesProvider.create(
    settings,
    discover.parse({ kubernetes: { namespace: 'shop', service: 'billing', port: 'http' } }),
    { redis: () => undefined },
  );
  const urls = async (signal: AbortSignal) => (await resolve(signal)).targets.map((t) => t.url);
  const lists = () => api.requests.filter((r) => !r.url.searchParams.has('watch')).length;
  const stop = new AbortController();
  try {
    api.apply('shop', endpointSlice('billing', 'billing-a', PORTS, [{ ip: '127.0.0.1' }]));
    api.apply('shop', endpointSlice('other', 'other-a', PORTS, [{ ip: '127.0.0.9' }]));
    api.apply('default', endpointSlice('billing', 'billing-x', PORTS, [{ ip: '127.0.0.8' }]));
    assert.deepEqual(await urls(stop.signal), ['http://127.0.0.1:8080']);

    // A change to another service's slice (a bookmark here) is read through; the next change of ours answers.
    let next = urls(stop.signal);
    await api.whenWatching(1);
    api.apply('shop', endpointSlice('other', 'other-a', PORTS, [{ ip: '127.0.0.7' }]));
    api.apply(
      'shop',
      endpointSlice('billing', 'billing-b', PORTS, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3', ready: false }]),
    );
    assert.deepEqual(await next, ['http://127.0.0.1:8080', 'http://127.0.0.2:8080']);
    const watch = api.requests.at(-1)!.url.searchParams;
    assert.equal(watch.get('labelSelector'), 'kubernetes.io/service-name=billing');
    assert.equal(watch.get('allowWatchBookmarks'), 'true');
    assert.equal(watch.get('resourceVersion'), '103', 'watched from the version of the list');

    // Events that come between rounds wait in the stream.
    api.apply('shop', endpointSlice('billing', 'billing-b', PORTS, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3' }]));
    assert.deepEqual(await urls(stop.signal), [
      'http://127.0.0.1:8080',
      'http://127.0.0.2:8080',
      'http://127.0.0.3:8080',
    ]);

    // The server ends the watch (its timeoutSeconds): watched again from the last version, no list; a change made
    // meanwhile comes from the history.
    const before = lists();
    next = urls(stop.signal);
    api.endWatches();
    api.apply('shop', endpointSlice('billing', 'billing-b', PORTS, [{ ip: '127.0.0.2' }]));
    assert.deepEqual(await next, ['http://127.0.0.1:8080', 'http://127.0.0.2:8080']);
    assert.equal(lists(), before);
    assert.equal(api.requests.at(-1)!.url.searchParams.get('resourceVersion'), '106');

    // 410 as an ERROR event: list again (with the token of now: it rotated), then watch from the new version.
    writeFileSync(tokenFile, 'two');
    api.setToken('two');
    const api2token = api.requests.length;
    next = urls(stop.signal);
    await api.whenWatching(1);
    const listed = lists();
    api.compact('event');
    api.remove('shop', 'billing-b');
    assert.deepEqual(await next, ['http://127.0.0.1:8080']);
    assert.equal(lists(), listed + 1, 'listed again after the 410');
    assert.equal(api.requests[api2token]!.authorization, 'Bearer two', 'the token file is read again');

    // 410 as a status (the watch was ended and its version is gone): list again.
    next = urls(stop.signal);
    await api.whenWatching(1);
    api.compact('status');
    api.apply('shop', endpointSlice('billing', 'billing-b', PORTS, [{ ip: '127.0.0.4' }]));
    assert.deepEqual(await next, ['http://127.0.0.1:8080', 'http://127.0.0.4:8080']);
    assert.equal(lists(), listed + 2);
    const rewatched = api.requests.filter((r) => r.url.searchParams.has('watch')).length;
    assert.ok(rewatched >= 3);
  } finally {
    stop.abort();
    await api.close();
  }
});

test('a refused token is a failure (the next round lists again); the loop stopping ends the watch', async () => {
  const api = await startKubernetesStandIn({ token: 'right' });
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), 'wrong');
  const make = (tokenFile: string) =>
    kubernetesProvider.create(
      discoverySettings.parse({ kubernetes: { apiServer: api.url, tokenFile } }),
      discover.parse({ kubernetes: { namespace: 'shop', service: 'billing', port: 8080 } }),
      { redis: () => undefined, configDir: dir },
    );
  const stop = new AbortController();
  try {
    await assert.rejects(make('token')(stop.signal), /the Kubernetes API answered 401: Unauthorized/);
    writeFileSync(join(dir, 'token'), 'right');
    const resolve = make('token');
    assert.deepEqual((await resolve(stop.signal)).targets, []);
    const waiting = resolve(stop.signal);
    await api.whenWatching(1);
    stop.abort();
    await assert.rejects(waiting);
  } finally {
    stop.abort();
    await api.close();
  }
});
