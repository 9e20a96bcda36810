import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { closedPort } from '../helpers/ports.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

describe('forward-auth (external authorization)', () => {
  let backend: Backend;
  let auth: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;
  /** What the auth service received, in order. */
  const seen: { url: string; method: string; headers: IncomingHttpHeaders; body: string }[] = [];
  /** Calls per Authorization value, as the auth service counted them. */
  const calls = new Map<string, number>();
  const countOf = (authorization: string) => calls.get(authorization) ?? 0;

  before(async () => {
    auth = await startBackend((req, res) => {
      if (req.url === '/slow') return; // accepts and never answers: the gateway's timeout must fire
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const authorization = req.headers.authorization ?? '';
        seen.push({ url: req.url!, method: req.method!, headers: req.headers, body });
        calls.set(authorization, countOf(authorization) + 1);
        if (req.url === '/body') {
          res.writeHead(body.includes('"ok":true') ? 204 : 403, { 'content-type': 'text/plain' });
          res.end(body.includes('"ok":true') ? '' : 'body refused');
          return;
        }
        if (authorization === 'Bearer good') {
          res.writeHead(200, { 'x-user-id': 'u-1', 'x-other': 'not copied' }).end('ok');
        } else if (authorization === 'Bearer login') {
          res.writeHead(302, { location: 'https://login.example.com/?next=%2Fapi' }).end();
        } else {
          res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="acme"' });
          res.end('{"error":"who are you"}');
        }
      });
    });
    backend = await startEchoBackend('api');
    const refusing = await closedPort();
    const fa = (extra: string) => `{ url: "${auth.url}/authz", copyHeaders: [x-user-id], timeout: 1s${extra} }`;
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  api: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: /api }
    upstream: api
    plugins:
      - forward-auth: ${fa(', requestHeaders: [authorization, x-tenant]')}
  - match: { path: /cached }
    upstream: api
    plugins:
      - forward-auth: ${fa(", cacheKey: '{headers.authorization}', cacheTtl: 1m")}
  - match: { path: /slow }
    upstream: api
    plugins:
      - forward-auth: { url: "${auth.url}/slow", timeout: 200ms }
  - match: { path: /down }
    upstream: api
    plugins:
      - forward-auth: { url: "http://127.0.0.1:${refusing}/authz" }
  - match: { path: /open }
    upstream: api
    plugins:
      - forward-auth: { url: "http://127.0.0.1:${refusing}/authz", copyHeaders: [x-user-id], onError: allow }
  - match: { path: /body }
    upstream: api
    limits: { maxBodySize: 64b }
    plugins:
      - forward-auth: { url: "${auth.url}/body", includeBody: true }
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([backend?.close(), auth?.close()]);
  });

  const get = (path: string, headers: Record<string, string> = {}) => request(port, path, { headers });

  test('2xx passes: the service gets method, URI, client and the listed headers; copyHeaders go upstream', async () => {
    const r = await get('/api/orders?page=2', {
      authorization: 'Bearer good',
      'x-tenant': 'acme',
      cookie: 'sid=1',
      'x-user-id': 'forged',
    });
    assert.equal(r.status, 200);
    const echo = json(r);
    assert.equal(echo.url, '/api/orders?page=2');
    assert.equal(echo.headers['x-user-id'], 'u-1', "the service's value replaces the client's");
    assert.equal(echo.headers['x-other'], undefined, 'only copyHeaders are copied');
    const call = seen.findLast((s) => s.url === '/authz')!;
    assert.equal(call.method, 'GET');
    assert.equal(call.body, '', 'no body unless includeBody');
    assert.equal(call.headers['x-forwarded-method'], 'GET');
    assert.equal(call.headers['x-forwarded-uri'], '/api/orders?page=2');
    assert.equal(call.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(call.headers.authorization, 'Bearer good');
    assert.equal(call.headers['x-tenant'], 'acme');
    assert.equal(call.headers.cookie, undefined, 'a header not in requestHeaders stays with the gateway');
    assert.equal(call.headers['x-user-id'], undefined);
  });

  test("any other status reaches the client with the service's body and content type", async () => {
    const r = await get('/api', { authorization: 'Bearer bad' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="acme"');
    assert.equal(r.body, '{"error":"who are you"}');
    const before = backend.requests.length;
    const login = await get('/api', { authorization: 'Bearer login' });
    assert.equal(login.status, 302);
    assert.equal(login.headers.location, 'https://login.example.com/?next=%2Fapi');
    assert.equal(backend.requests.length, before, 'a refused request never reaches the upstream');
  });

  test('decisions are cached by cacheKey: one call per key, allow and deny alike', async () => {
    const first = countOf('Bearer good');
    for (let i = 0; i < 3; i++) {
      const r = await get('/cached', { authorization: 'Bearer good', 'x-user-id': 'forged' });
      assert.equal(r.status, 200);
      assert.equal(json(r).headers['x-user-id'], 'u-1', 'a cached allow copies the headers too');
    }
    assert.equal(countOf('Bearer good'), first + 1);
    const denied = countOf('Bearer nobody');
    for (let i = 0; i < 3; i++) {
      const r = await get('/cached', { authorization: 'Bearer nobody' });
      assert.equal(r.status, 401);
      assert.equal(r.body, '{"error":"who are you"}');
    }
    assert.equal(countOf('Bearer nobody'), denied + 1, 'another key is its own decision');
    // The uncached route asks every time.
    const uncached = countOf('Bearer good');
    await get('/api', { authorization: 'Bearer good' });
    await get('/api', { authorization: 'Bearer good' });
    assert.equal(countOf('Bearer good'), uncached + 2);
  });

  test('a service that never answers: 503 problem+json after timeout', async () => {
    const r = await get('/slow', { authorization: 'Bearer good' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const problem = json(r);
    assert.equal(problem.code, 'TP_AUTHZ_UNAVAILABLE');
    assert.ok(!r.body.includes('127.0.0.1'), 'the problem names no address');
  });

  test('a service that is down: 503, or through without client identity headers with onError: allow', async () => {
    const down = await get('/down', { authorization: 'Bearer good' });
    assert.equal(down.status, 503);
    assert.equal(json(down).code, 'TP_AUTHZ_UNAVAILABLE');
    assert.ok(!down.body.includes('127.0.0.1'));
    const open = await get('/open', { authorization: 'Bearer good', 'x-user-id': 'forged' });
    assert.equal(open.status, 200);
    assert.equal(json(open).headers['x-user-id'], undefined, "the client's claim never goes upstream");
  });

  test('includeBody: the service judges the body (POST), the upstream gets the same bytes; 413 past maxBodySize', async () => {
    const ok = await request(port, '/body', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"ok":true}',
    });
    assert.equal(ok.status, 200);
    assert.equal(json(ok).body, '{"ok":true}');
    assert.equal(json(ok).method, 'PUT');
    const call = seen.findLast((s) => s.url === '/body')!;
    assert.equal(call.method, 'POST');
    assert.equal(call.headers['x-forwarded-method'], 'PUT');
    assert.equal(call.headers['content-type'], 'application/json');
    const no = await request(port, '/body', { method: 'POST', body: '{"ok":false}' });
    assert.equal(no.status, 403);
    assert.equal(no.body, 'body refused');
    const calls = seen.length;
    const big = await request(port, '/body', { method: 'POST', body: 'x'.repeat(100) });
    assert.equal(big.status, 413);
    assert.equal(json(big).code, 'TP_BODY_TOO_LARGE');
    assert.equal(seen.length, calls, 'a body past maxBodySize is not sent to the service');
  });
});
