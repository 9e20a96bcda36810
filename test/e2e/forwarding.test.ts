import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { json, request, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

describe('forwarding', () => {
  let a: Backend, b: Backend, c: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    [a, b, c] = await Promise.all([startEchoBackend('a'), startEchoBackend('b'), startEchoBackend('c')]);
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: behind-lb, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: [127.0.0.0/8] }
upstreams:
  users:
    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]
  orders:
    targets: [{ url: "${c.url}" }]
  both-hosts:
    preserveHost: false
    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]
  rewritten-host:
    preserveHost: false
    hideResponseHeaders: []
    targets: [{ url: "${c.url}" }]
routes:
  - name: users
    match: { host: api.example.com, path: /users }
    upstream: users
  - name: orders-read
    match: { path: /orders, methods: [GET] }
    upstream: orders
    plugins:
      - rewrite: { stripPrefix: /orders, addPrefix: /v2/orders }
      - headers:
          request: { set: { x-gateway: turnpike }, remove: [cookie] }
          response: { set: { cache-control: no-store } }
  - name: raw
    match: { path: /raw }
    upstream: rewritten-host
  - name: both
    match: { path: /both }
    upstream: both-hosts
  - name: any
    match: { path: /anything }
    upstream: orders
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  test('round robin alternates between the targets of an upstream', async () => {
    const names = [];
    for (let i = 0; i < 4; i++)
      names.push(json(await request(port, '/users/7', { headers: { host: 'api.example.com' } })).name);
    assert.deepEqual(names.sort(), ['a', 'a', 'b', 'b']);
  });

  test('rewrite strips and adds a prefix and the headers plugin sets request and response headers', async () => {
    const r = await request(port, '/orders/42?x=1', { headers: { cookie: 'session=1', 'x-keep': 'yes' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    const seen = json(r);
    assert.equal(seen.url, '/v2/orders/42?x=1');
    assert.equal(seen.headers['x-gateway'], 'turnpike');
    assert.equal(seen.headers.cookie, undefined);
    assert.equal(seen.headers['x-keep'], 'yes');
  });

  test('the Host header is preserved by default and replaced when preserveHost is false', async () => {
    const kept = json(await request(port, '/users', { headers: { host: 'api.example.com' } }));
    assert.equal(kept.headers.host, 'api.example.com');
    const replaced = json(await request(port, '/raw', { headers: { host: 'public.example.com' } }));
    assert.equal(replaced.headers.host, `127.0.0.1:${c.port}`);
  });

  test('with preserveHost false each target gets its own host:port', async () => {
    const seen = [json(await request(port, '/both')), json(await request(port, '/both'))];
    for (const s of seen) assert.equal(s.headers.host, `127.0.0.1:${s.name === 'a' ? a.port : b.port}`);
    assert.notEqual(seen[0].name, seen[1].name);
  });

  test('hop-by-hop headers and those named in Connection are not forwarded', async () => {
    const seen = json(
      await request(port, '/anything', {
        headers: {
          connection: 'keep-alive, x-secret-hop',
          'x-secret-hop': '1',
          'keep-alive': 'timeout=5',
          te: 'gzip',
          'proxy-connection': 'x',
          'x-normal': 'n',
        },
      }),
    );
    assert.equal(seen.headers['x-secret-hop'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers['proxy-connection'], undefined);
    assert.equal(seen.headers['x-normal'], 'n');
  });

  test('backend identity headers are hidden unless the upstream exposes them', async () => {
    const hidden = await request(port, '/anything');
    assert.equal(hidden.headers.server, undefined);
    assert.equal(hidden.headers['x-powered-by'], undefined);
    const shown = await request(port, '/raw');
    assert.equal(shown.headers.server, 'secret-backend/1.0');
  });

  test('X-Forwarded-* from an untrusted peer are replaced', async () => {
    const seen = json(
      await request(port, '/anything', {
        headers: {
          host: 'shop.example.com',
          'x-forwarded-for': '6.6.6.6',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'evil',
        },
      }),
    );
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'shop.example.com');
  });

  test('X-Forwarded-* from a trusted proxy are kept and extended', async () => {
    const seen = json(
      await request(gateway.port('behind-lb'), '/anything', {
        headers: {
          host: 'shop.example.com',
          'x-forwarded-for': '203.0.113.9',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'shop.example.com',
        },
      }),
    );
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  test('a request id is generated when absent, kept when sent, passed upstream and echoed', async () => {
    const r = await request(port, '/anything');
    const id = r.headers['x-request-id'] as string;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(json(r).headers['x-request-id'], id);
    const kept = await request(port, '/anything', { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(kept.headers['x-request-id'], 'abc-123');
    assert.equal(json(kept).headers['x-request-id'], 'abc-123');
  });

  test('request bodies reach the backend', async () => {
    const seen = json(
      await request(port, '/anything', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } }),
    );
    assert.equal(seen.body, 'hello');
    assert.equal(seen.method, 'POST');
  });

  test('dot segments are resolved before routing', async () => {
    const r = await request(port, '/orders/../anything/x');
    assert.equal(json(r).url, '/anything/x');
  });
});
