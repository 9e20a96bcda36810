// X04 (HAProxy h1_host_normalization.vtc, nginx http_host.t, RFC 9112 §3.2): Host header attacks. A missing (in
// HTTP/1.1), repeated or invalid Host is refused with 400 TP_BAD_REQUEST + close: a Host is one `host[:port]`, the
// port at most 65535, no userinfo, spaces or commas (two Hosts an intermediary joined). An absolute-form target's
// authority wins over Host, for routing and for the Host sent upstream. Letter case and a trailing dot route as the
// plain name. A host no route names gets 404 from the host-less default, never a privileged virtual host.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_KEY } from '../helpers/attack-gateway.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

let backend: RecordingBackend;
let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
let port: number;

before(async () => {
  backend = await startRecordingBackend();
  gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
consumers: [{ name: operator, credentials: { apiKeys: ["${ADMIN_KEY}"] } }]
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: admin-vhost
    match: { host: admin.example }
    upstream: app
    plugins: [{ key-auth: { header: x-api-key } }]
  - { name: good, match: { host: good.example, path: / }, upstream: app }
  - { name: canary, match: { path: /public }, upstream: app }
`);
  port = gateway.port('web');
});
after(async () => {
  await gateway.stop();
  await backend.close();
});

async function get(head: string): Promise<{ status: number; code?: string; host?: string }> {
  const before = backend.arrivals.length;
  const r = await exchange(port, `${head}Connection: close\r\n\r\n`);
  assert.equal(r.responses.length, 1, r.text);
  const res = r.responses[0]!;
  const arrived = backend.arrivals.slice(before)[0];
  return {
    status: res.status,
    code: res.headers['content-type'] === 'application/problem+json' ? JSON.parse(res.body).code : undefined,
    host: arrived?.headers.host,
  };
}

test('an HTTP/1.1 request without Host is refused with a 400 problem + close', async () => {
  await assertRefused(port, backend, 'GET /x HTTP/1.1\r\n\r\n', 400, 'TP_BAD_REQUEST');
});

test('two Host headers, equal or not, are refused with 400 + close', async () => {
  for (const hosts of ['Host: good.example\r\nHost: admin.example', 'Host: good.example\r\nHost: good.example']) {
    await assertRefused(port, backend, `GET /x HTTP/1.1\r\n${hosts}\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
});

test('a Host that is not host[:port] (userinfo, space, comma, path, bad or huge port) is refused with 400', async () => {
  for (const host of [
    'a@b',
    'good.example@admin.example',
    'a b',
    'good.example admin.example',
    'good.example,admin.example',
    'good.example/admin',
    'good.example:99999',
    'good.example:65536',
    'good.example:80:80',
    'good.example:8o',
    '[::1',
    'good.example\\admin',
  ]) {
    await assertRefused(port, backend, `GET /x HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
});

test('a port up to 65535, an empty port, and an IP literal are accepted', async () => {
  for (const host of ['good.example:65535', 'good.example:', 'good.example:080']) {
    const r = await get(`GET /ok HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(r.status, 200, host);
    assert.equal(r.host, host);
  }
  assert.equal((await get('GET /ok HTTP/1.1\r\nHost: [::1]:80\r\n')).code, 'TP_ROUTE_NOT_FOUND');
});

test('the absolute-form authority wins over Host, for routing and for the Host forwarded', async () => {
  const good = await get('GET http://good.example/page HTTP/1.1\r\nHost: evil.com\r\n');
  assert.equal(good.status, 200);
  assert.equal(good.host, 'good.example');
  const fromAdminHost = await get('GET http://good.example/page HTTP/1.1\r\nHost: admin.example\r\n');
  assert.equal(fromAdminHost.status, 200);
  assert.equal(fromAdminHost.host, 'good.example', 'the admin vhost name never reaches the backend unauthenticated');
  const admin = await get('GET http://admin.example/secret HTTP/1.1\r\nHost: good.example\r\n');
  assert.equal(admin.status, 401, 'the admin vhost named in the target is authenticated');
  assert.equal(admin.host, undefined);
});

test('letter case and a trailing dot route as the plain name: no way around the admin vhost', async () => {
  for (const host of ['ADMIN.example', 'admin.example.', 'Admin.Example.:80']) {
    const r = await get(`GET /secret HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.equal(r.status, 401, host);
    assert.equal(r.host, undefined);
  }
  const good = await get('GET /page HTTP/1.1\r\nHost: GOOD.example.\r\n');
  assert.equal(good.status, 200);
});

test('a host no route names, or no Host in HTTP/1.0, gets 404 from the default, never the admin vhost', async () => {
  for (const head of [
    'GET /secret HTTP/1.1\r\nHost: evil.example\r\n',
    'GET /secret HTTP/1.1\r\nHost: admin.example.evil\r\n',
    'GET /secret HTTP/1.1\r\nHost: \r\n',
    'GET /secret HTTP/1.0\r\n',
    'GET http://evil.example/secret HTTP/1.1\r\nHost: admin.example\r\n',
  ]) {
    const r = await get(head);
    assert.equal(r.status, 404, head);
    assert.equal(r.code, 'TP_ROUTE_NOT_FOUND');
    assert.equal(r.host, undefined);
  }
});
