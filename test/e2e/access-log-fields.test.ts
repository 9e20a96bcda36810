// accessLog.fields / format / skip, the fields an operator asked for (consumer, protocol, userAgent, referer,
// attempts, upstream timings) and the error code on every answer the gateway makes (401, 403 included).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const KEY = 'k-0123456789abcdef0123456789';

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').trim().split('\n');
}

describe('access log fields', () => {
  let echo: Backend;
  before(async () => {
    echo = await startEchoBackend('echo');
  });
  after(() => echo.close());

  const base = (log: string, extra = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
consumers:
  - { name: mobile, groups: [partners], credentials: { apiKeys: ["${KEY}"] } }
  - { name: ops, groups: [staff], credentials: { apiKeys: ["${KEY}-ops"] } }
routes:
  - name: private
    match: { path: /private }
    upstream: echo
    plugins: [{ key-auth: { header: x-api-key } }, { allow: { groups: [staff] } }]
  - name: health
    match: { path: { exact: /healthz } }
    respond: { status: 200, body: ok }
  - { name: echo, match: { path: / }, upstream: echo }
accessLog: ${log}
${extra}`;

  test('a proxied request carries consumer, protocol, user agent, referer, attempts and upstream timings', async () => {
    const file = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(base(`{ output: ${file} }`));
    try {
      const headers = { 'user-agent': 'probe/1.0 "x"', referer: 'https://shop.example.com/cart' };
      assert.equal((await request(gw.port(), '/a', { headers })).status, 200);
      // The gateway keeps its upstream connection: the second try reuses it.
      assert.equal((await request(gw.port(), '/b', { headers })).status, 200);
    } finally {
      await gw.stop();
    }
    const [first, second] = lines(file).map((l) => JSON.parse(l));
    assert.equal(first.level, 'info');
    assert.equal(first.protocol, 'HTTP/1.1');
    assert.equal(first.userAgent, 'probe/1.0 "x"');
    assert.equal(first.referer, 'https://shop.example.com/cart');
    assert.equal(first.attempts, 1);
    assert.equal(first.consumer, undefined);
    assert.equal(typeof first.upstreamConnectMs, 'number');
    assert.equal(typeof first.upstreamHeadersMs, 'number');
    assert.ok(first.upstreamHeadersMs >= first.upstreamConnectMs);
    assert.equal(second.upstreamConnectMs, null, 'a reused connection has no connect time');
    assert.equal(typeof second.upstreamHeadersMs, 'number');
  });

  test('401 and 403 made by plugins carry their code, and the consumer is named', async () => {
    const file = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(base(`{ output: ${file} }`));
    try {
      assert.equal((await request(gw.port(), '/private')).status, 401);
      assert.equal((await request(gw.port(), '/private', { headers: { 'x-api-key': KEY } })).status, 403);
    } finally {
      await gw.stop();
    }
    const [unauthenticated, forbidden] = lines(file).map((l) => JSON.parse(l));
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.error, 'TP_UNAUTHENTICATED');
    assert.equal(unauthenticated.attempts, 0);
    assert.equal(unauthenticated.upstreamConnectMs, null);
    assert.equal(unauthenticated.upstreamHeadersMs, null);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.error, 'TP_FORBIDDEN');
    assert.equal(forbidden.consumer, 'mobile');
  });

  test('fields picks and orders the fields of a line', async () => {
    const file = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(base(`{ output: ${file}, fields: [status, path, consumer, error, time] }`));
    try {
      await request(gw.port(), '/a?x=1');
      await request(gw.port(), '/private');
    } finally {
      await gw.stop();
    }
    const [ok, refused] = lines(file).map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(ok), ['status', 'path', 'time'], 'fields without a value are left out');
    assert.deepEqual(Object.keys(refused), ['status', 'path', 'error', 'time']);
    assert.equal(ok.path, '/a?x=1');
  });

  test('skip drops the lines of the routes and paths it names', async () => {
    const file = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(base(`{ output: ${file}, skip: { routes: [health], paths: [/status] } }`));
    try {
      await request(gw.port(), '/healthz');
      await request(gw.port(), '/status');
      await request(gw.port(), '/status/live?x');
      await request(gw.port(), '/statusx');
      await request(gw.port(), '/kept');
    } finally {
      await gw.stop();
    }
    assert.deepEqual(
      lines(file).map((l) => JSON.parse(l).path),
      ['/statusx', '/kept'],
    );
  });

  test("format: combined writes NGINX's combined line, escaped as NGINX escapes", async () => {
    const file = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(base(`{ output: ${file}, format: combined }`));
    try {
      await request(gw.port(), '/a?q=1', {
        headers: { 'user-agent': 'curl/8.5 "quoted" \\ é', referer: 'https://r.example/' },
      });
      await request(gw.port(), '/private', { headers: { 'x-api-key': KEY } });
    } finally {
      await gw.stop();
    }
    const [ok, forbidden] = lines(file);
    const re =
      /^127\.0\.0\.1 - (\S+) \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;
    const m = re.exec(ok!);
    assert.ok(m, ok);
    assert.equal(m[1], '-');
    assert.equal(m[3], 'GET /a?q=1 HTTP/1.1');
    assert.equal(m[4], '200');
    assert.ok(Number(m[5]) > 0);
    assert.equal(m[6], 'https://r.example/');
    assert.equal(m[7], 'curl/8.5 \\x22quoted\\x22 \\x5C \\xC3\\xA9');
    const f = re.exec(forbidden!);
    assert.ok(f, forbidden);
    assert.equal(f[1], 'mobile');
    assert.equal(f[4], '403');
    assert.equal(f[6], '-');
    assert.equal(f[7], '-');
  });
});
