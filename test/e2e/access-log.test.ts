import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawExchange } from '../helpers/raw.ts';
import { request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

describe('access log', () => {
  let echo: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let logFile: string;

  before(async () => {
    echo = await startEchoBackend('echo');
    logFile = join(tempDir(), 'logs', 'access.log');
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: echo }
accessLog: { enabled: true, output: ${logFile} }
`);
  });

  after(async () => {
    await echo.close();
  });

  test('writes one JSON line per request with the fields an operator needs', async () => {
    const port = gateway.port();
    await request(port, '/echo/a?q=1', {
      method: 'POST',
      body: 'hello',
      headers: { host: 'shop.example.com', 'x-request-id': 'req-42' },
    });
    await request(port, '/missing');
    await gateway.stop(); // flushes
    const lines = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    const [ok, missing] = lines;
    assert.equal(ok.requestId, 'req-42');
    assert.equal(ok.clientIp, '127.0.0.1');
    assert.equal(ok.method, 'POST');
    assert.equal(ok.host, 'shop.example.com');
    assert.equal(ok.path, '/echo/a?q=1');
    assert.equal(ok.route, 'echo');
    assert.equal(ok.upstream, 'echo');
    assert.equal(ok.target, echo.url);
    assert.equal(ok.status, 200);
    assert.equal(ok.bytesIn, 5);
    assert.ok(ok.bytesOut > 0);
    assert.equal(typeof ok.durationMs, 'number');
    assert.ok(!Number.isNaN(Date.parse(ok.time)));
    assert.equal(missing.status, 404);
    assert.equal(missing.error, 'TP_ROUTE_NOT_FOUND');
    assert.match(missing.requestId, /^[0-9a-f-]{36}$/);
  });

  test('client-controlled values are escaped, so every line stays valid JSON', async () => {
    const file = join(tempDir(), 'escape.log');
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: 'we"ird', match: { path: / }, respond: { body: ok } }]
accessLog: { enabled: true, output: ${file} }
`);
    // The backslash goes in the query: in a path it is refused 400 TP_BAD_PATH (test/attacks/path-normalisation).
    await request(gw.port(), '/a"b?q="x\\c"', { headers: { 'x-request-id': 'id-"1"\\' } });
    // A Host that is no host is refused (400), and logged as it came.
    await request(gw.port(), '/', { headers: { host: 'h"ost' } });
    await gw.stop();
    const [line, refused] = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(line.requestId, 'id-"1"\\');
    assert.equal(line.path, '/a"b?q="x\\c"');
    assert.equal(line.route, 'we"ird');
    assert.equal(refused.status, 400);
    assert.equal(refused.host, 'h"ost');
  });

  test("a relative output path is taken from the config file's folder, not the working directory", async () => {
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: ok, match: { path: / }, respond: { body: ok } }]
accessLog: { enabled: true, output: logs/relative.log }
`);
    await request(gw.port(), '/');
    await gw.stop();
    const line = JSON.parse(readFileSync(join(dirname(gw.file), 'logs', 'relative.log'), 'utf8').trim());
    assert.equal(line.route, 'ok');
  });

  test('a quiet gateway still writes its lines out within about a second', async () => {
    const file = join(tempDir(), 'quiet.log');
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: ok, match: { path: / }, respond: { body: ok } }]
accessLog: { enabled: true, output: ${file} }
`);
    try {
      await request(gw.port(), '/');
      let text = '';
      for (let i = 0; i < 30 && !text.includes('"route":"ok"'); i++) {
        await sleep(100);
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          // not created yet
        }
      }
      assert.match(text, /"route":"ok"/);
    } finally {
      await gw.stop();
    }
  });
});

test('a client refused before it had a request is logged once, with its address and the code, nothing it sent', async () => {
  const echo = await startEchoBackend('echo');
  const logFile = join(tempDir(), 'access.log');
  const gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: echo, match: { path: / }, upstream: echo }]
accessLog: { enabled: true, output: ${logFile} }
`);
  try {
    const { text } = await rawExchange(
      gateway.port(),
      'GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret-token\r\nX: va\rlue\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 400 /);
  } finally {
    await gateway.stop(); // flushes
    await echo.close();
  }
  const text = readFileSync(logFile, 'utf8');
  const lines = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 1, text);
  assert.deepEqual(
    {
      listener: lines[0].listener,
      protocol: lines[0].protocol,
      clientIp: lines[0].clientIp,
      refused: lines[0].refused,
    },
    { listener: 'web', protocol: 'http/1.1', clientIp: '127.0.0.1', refused: 'TP_BAD_REQUEST' },
  );
  assert.ok(!text.includes('secret-token'));
});
