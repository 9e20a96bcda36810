import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closedPort } from '../helpers/ports.ts';
import { assertProblem } from '../helpers/problem.ts';
import { rawExchange } from '../helpers/raw.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

describe('errors and limits', () => {
  let echo: Backend, hang: Backend, reset: Backend;
  let deadPort: number;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    echo = await startEchoBackend('echo');
    hang = await startBackend(() => {
      /* never answers */
    });
    reset = await startBackend((req) => req.socket.destroy());
    deadPort = await closedPort();
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
limits: { maxHeaderSize: 2kb, maxBodySize: 1kb }
upstreams:
  echo: { targets: [{ url: "${echo.url}" }] }
  dead: { targets: [{ url: "http://127.0.0.1:${deadPort}" }] }
  hang: { targets: [{ url: "${hang.url}" }], timeouts: { response: 300ms } }
  reset: { targets: [{ url: "${reset.url}" }] }
routes:
  - { name: echo, match: { path: /echo }, upstream: echo }
  - { name: big, match: { path: /big }, upstream: echo, limits: { maxBodySize: 64kb } }
  - { name: dead, match: { path: /dead }, upstream: dead }
  - { name: hang, match: { path: /hang }, upstream: hang }
  - { name: slow-route, match: { path: /slow-route }, upstream: hang, limits: { requestTimeout: 100ms } }
  - { name: reset, match: { path: /reset }, upstream: reset }
`);
    port = gateway.port();
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([echo.close(), hang.close(), reset.close()]);
  });

  test('no route gives 404 problem+json', async () => {
    assertProblem(await request(port, '/nowhere'), 404, 'TP_ROUTE_NOT_FOUND');
  });

  test('a refused connection gives 502 without naming the backend', async () => {
    assertProblem(await request(port, '/dead'), 502, 'TP_UPSTREAM_UNAVAILABLE', [String(deadPort), '127.0.0.1']);
  });

  test('a connection reset by the backend gives 502', async () => {
    assertProblem(await request(port, '/reset'), 502, 'TP_UPSTREAM_RESET', [String(reset.port)]);
  });

  test('an upstream that does not answer in time gives 504', async () => {
    const started = Date.now();
    assertProblem(await request(port, '/hang'), 504, 'TP_UPSTREAM_TIMEOUT', [String(hang.port)]);
    assert.ok(Date.now() - started < 3000);
  });

  test('a route requestTimeout bounds the wait for the upstream', async () => {
    const started = Date.now();
    assertProblem(await request(port, '/slow-route'), 504, 'TP_UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 1500);
  });

  test('headers over maxHeaderSize give 431', async () => {
    const r = await rawExchange(port, `GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    assert.match(r.text, /application\/problem\+json/);
    assert.match(r.text, /TP_HEADERS_TOO_LARGE/);
  });

  test('a declared body over maxBodySize gives 413 before anything is forwarded', async () => {
    const before = echo.requests.length;
    const r = await request(port, '/echo', {
      method: 'POST',
      body: 'x'.repeat(2048),
      headers: { 'content-type': 'text/plain' },
    });
    assertProblem(r, 413, 'TP_BODY_TOO_LARGE');
    assert.equal(echo.requests.length, before);
  });

  test('a chunked body that grows past maxBodySize gives 413', async () => {
    const body = 'y'.repeat(4096);
    const chunked = `${(4096).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const r = await rawExchange(port, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    assert.match(r.text, /^HTTP\/1\.1 413 /);
    assert.match(r.text, /TP_BODY_TOO_LARGE/);
  });

  test('a route may raise maxBodySize', async () => {
    const r = await request(port, '/big', { method: 'POST', body: 'z'.repeat(10_000) });
    assert.equal(r.status, 200);
    assert.equal(json(r).body.length, 10_000);
  });

  test('both Content-Length and Transfer-Encoding give 400 and the connection is closed', async () => {
    const r = await rawExchange(
      port,
      `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.match(r.text, /application\/problem\+json/);
    assert.equal(r.closed, true);
  });

  test('a malformed request line gives 400 problem+json', async () => {
    const r = await rawExchange(port, `GARBAGE\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.match(r.text, /TP_BAD_REQUEST/);
    assert.equal(r.closed, true);
  });

  test('the gateway keeps serving after all of the above', async () => {
    assert.equal((await request(port, '/echo')).status, 200);
  });
});

describe('expect: 100-continue', () => {
  test('a body over the limit is refused before the client uploads it, and an allowed one is continued', async () => {
    const echo = await startEchoBackend('echo');
    const gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
limits: { maxBodySize: 1kb }
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: echo, match: { path: /echo }, upstream: echo }]
`);
    try {
      const port = gateway.port();
      const refused = await rawExchange(
        port,
        `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n`,
        2000,
      );
      assert.match(refused.text, /^HTTP\/1\.1 413 /);
      assert.ok(!refused.text.includes('100 Continue'));
      assert.equal(refused.closed, true);
      const missing = await rawExchange(
        port,
        `POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
        2000,
      );
      assert.match(missing.text, /^HTTP\/1\.1 404 /);
      const { request: httpRequest } = await import('node:http');
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/echo',
            method: 'POST',
            headers: { expect: '100-continue', 'content-length': 5 },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(text));
          },
        );
        req.on('continue', () => req.end('hello'));
        req.on('error', reject);
      });
      assert.equal(JSON.parse(body).body, 'hello');
    } finally {
      await gateway.stop();
      await echo.close();
    }
  });
});
