// The pipeline owns the exchange: response phases and their order, body stages that compose (and what the cache
// stores of them), the global chain on requests no route matches, and a bug in a hook answered 500, never a crash.
import '../helpers/test-plugins.ts';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { spawnGateway } from '../helpers/process.ts';
import { json, request, requestBytes, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

const TEXT = 'hello pipeline, '.repeat(200);

const rawGet = (port: number, path: string, headers: Record<string, string> = {}) =>
  requestBytes(port, path, { headers });

describe('response phases and body stages', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    backend = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(TEXT);
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
consumers:
  - { name: alice, credentials: { apiKeys: [alice-key-0123456789] } }
routes:
  - name: staged
    match: { path: /staged }
    upstream: app
    plugins:
      - compress: { minSize: 1b }
      - test-upper: {}
      - test-suffix: { text: "[end]" }
  - name: cached
    match: { path: /cached }
    upstream: app
    plugins:
      - cache: {}
      - compress: { minSize: 1b }
      - test-upper: {}
      - test-suffix: { text: "[end]" }
  - name: order
    match: { path: /order }
    upstream: app
    plugins:
      - test-mark-compress: {}
      - test-mark-response: {}
      - test-mark-limit: {}
      - test-mark-access: {}
  - name: order-refused
    match: { path: /refused }
    upstream: app
    plugins:
      - test-mark-response: {}
      - test-mark-limit: {}
      - test-mark-access: {}
      - key-auth: {}
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  test('two body stages and compress on one route compose in order (transform-response, then compress)', async () => {
    const r = await rawGet(port, '/staged', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(r.body).toString(), `${TEXT.toUpperCase()}[end]`);
  });

  test('the cache stores the bytes after compress: a hit replays them, never transformed twice', async () => {
    const miss = await rawGet(port, '/cached', { 'accept-encoding': 'gzip' });
    assert.equal(miss.headers['x-cache'], 'MISS');
    const hit = await rawGet(port, '/cached', { 'accept-encoding': 'gzip' });
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.equal(hit.headers['content-encoding'], 'gzip');
    assert.deepEqual(hit.body, miss.body);
    assert.equal(gunzipSync(hit.body).toString(), `${TEXT.toUpperCase()}[end]`);
  });

  test('response hooks run response phases first, then request-phase plugins in reverse order', async () => {
    const r = await request(port, '/order');
    assert.equal(r.headers['x-order'], 'test-mark-response,test-mark-compress,test-mark-limit,test-mark-access');
  });

  test('a local reply (401) gets the response phases and the hooks of the plugins that ran, not of later ones', async () => {
    const r = await request(port, '/refused');
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-order'], 'test-mark-response,test-mark-access');
  });
});

describe('the global chain', () => {
  let backend: Backend;
  let open: Awaited<ReturnType<typeof startGatewayYaml>>;
  let locked: Awaited<ReturnType<typeof startGatewayYaml>>;

  before(async () => {
    backend = await startBackend((_req, res) => res.end('ok'));
    open = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
plugins:
  - cors: { origins: ["https://app.example.com"] }
  - security-headers: {}
routes:
  - match: { path: /api }
    upstream: app
`);
    locked = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
consumers:
  - { name: alice, credentials: { apiKeys: [alice-key-0123456789] } }
plugins:
  - key-auth: {}
routes:
  - match: { path: /api }
    upstream: app
`);
  });

  after(async () => {
    await Promise.all([open.stop(), locked.stop()]);
    await backend.close();
  });

  test('a request no route matches gets a 404 carrying the global CORS and security headers', async () => {
    const r = await request(open.port('web'), '/nowhere', { headers: { origin: 'https://app.example.com' } });
    assert.equal(r.status, 404);
    assert.equal(json(r).code, 'TP_ROUTE_NOT_FOUND');
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  });

  test('a global authentication plugin answers 401 before a 404 is revealed', async () => {
    const anonymous = await request(locked.port('web'), '/nowhere');
    assert.equal(anonymous.status, 401);
    assert.equal(json(anonymous).code, 'TP_UNAUTHENTICATED');
    const known = await request(locked.port('web'), '/nowhere', { headers: { 'x-api-key': 'alice-key-0123456789' } });
    assert.equal(known.status, 404);
    assert.equal(
      (await request(locked.port('web'), '/api', { headers: { 'x-api-key': 'alice-key-0123456789' } })).status,
      200,
    );
  });
});

describe('a hook that throws', () => {
  let backend: Backend;

  before(async () => {
    backend = await startBackend((_req, res) => res.end('ok'));
  });

  after(() => backend.close());

  const yaml = (port: number, workers: number) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
workers: ${workers}
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:${port}" }] }
routes:
  - { name: sync, match: { path: /sync }, upstream: app, plugins: [{ test-throw: { in: request } }] }
  - { name: async, match: { path: /async }, upstream: app, plugins: [{ test-throw: { in: async-request } }] }
  - { name: head, match: { path: /head }, upstream: app, plugins: [{ test-throw: { in: response } }] }
  - { name: local, match: { path: /local }, respond: { body: hi }, plugins: [{ test-throw: { in: response } }] }
  - { name: fine, match: { path: /fine }, upstream: app }
`;

  for (const workers of [1, 2]) {
    test(`answers 500 TP_INTERNAL, logs the stack and the route, and the gateway keeps serving (workers: ${workers})`, async () => {
      const gw = await spawnGateway(yaml(backend.port, workers), { startTimeoutMs: 30_000 });
      try {
        const port = gw.port('web');
        for (const path of ['/sync', '/async', '/head', '/local']) {
          const r = await request(port, path);
          assert.equal(r.status, 500, path);
          assert.equal(r.headers['content-type'], 'application/problem+json');
          assert.equal(json(r).code, 'TP_INTERNAL');
          assert.match(String(r.headers['x-request-id']), /.+/);
        }
        const fine = await request(port, '/fine');
        assert.equal(fine.status, 200);
        assert.equal(fine.body, 'ok');
        // The log lines are written beside the answers: wait for them as they arrive on stderr.
        const internal = () => gw.logLines.filter((l) => l.includes('TP_INTERNAL'));
        while (internal().length < 4) await once(gw.child.stderr!, 'data');
        const logged = internal().map((l) => JSON.parse(l) as { route: string; stack: string });
        assert.deepEqual(logged.map((l) => l.route).sort(), ['async', 'head', 'local', 'sync']);
        assert.ok(
          logged.every((l) => l.stack.includes('test-plugins.ts')),
          'each line carries the stack',
        );
      } finally {
        assert.equal(await gw.stop(), 0);
      }
    });
  }
});
