// Requests a backend could read differently from the gateway: h2c upgrades smuggled past the routes, Host
// confusion, underscore header names, override headers that poison caches, TRACE. The verdict is taken on what the
// backend received (a real server on port 0) and what the client, or the next client, got.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { h2Request } from '../helpers/h2.ts';
import { assertProblem } from '../helpers/problem.ts';
import { rawExchange } from '../helpers/raw.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

/** Reads from a raw connection until `done` says the text so far is complete (or the peer closes). */
function readUntil(socket: Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      if (done(text)) finish();
    };
    const finish = () => {
      socket.off('data', onData);
      socket.off('close', finish);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('close', finish);
    socket.once('error', reject);
  });
}

const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

describe('h2c smuggling', () => {
  // An h2c-capable backend: answers an `Upgrade: h2c` with 101 and records every byte it gets afterwards.
  let backend: Backend;
  const upgrades: string[] = [];
  const tunnelled: Buffer[] = [];
  const upgraded: Socket[] = [];
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;

  before(async () => {
    backend = await startBackend((req, res) => {
      const body = JSON.stringify({ url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    backend.server.on('upgrade', (req, socket: Socket) => {
      upgraded.push(socket);
      upgrades.push(String(req.headers.upgrade));
      socket.on('data', (c: Buffer) => tunnelled.push(c));
      // A 101 that answers the client's key: the gateway tunnels no other (test/attacks/websocket-smuggling.test.ts).
      const key = String(req.headers['sec-websocket-key']);
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n` +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: public
    match: { path: /public }
    upstream: app
`);
  });

  after(async () => {
    for (const s of upgraded) s.destroy();
    await gateway.stop();
    await backend.close();
  });

  test('an Upgrade: h2c request is forwarded as a plain request and the HTTP/2 bytes after it never reach the backend', async () => {
    const socket = connect(gateway.port('web'), '127.0.0.1');
    socket.write(
      'GET /public/x HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
        'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    const response = await readUntil(socket, (t) => {
      const end = t.indexOf('\r\n\r\n');
      if (end !== -1 && t.startsWith('HTTP/1.1 101')) return true;
      const length = /content-length: (\d+)/i.exec(t);
      return end !== -1 && length !== null && t.length >= end + 4 + Number(length[1]);
    });
    assert.match(response, /^HTTP\/1\.1 200 /, 'the client is not switched to HTTP/2');
    // What a smuggler sends next: the HTTP/2 connection preface, then ends its side; the gateway closes.
    socket.end(H2_PREFACE);
    const rest = await readUntil(socket, () => false);
    assert.doesNotMatch(rest, /^HTTP\/1\.1 [12]/, 'the preface is no request to the gateway');
    assert.deepEqual(upgrades, [], 'the backend was never asked to upgrade');
    assert.equal(Buffer.concat(tunnelled).length, 0, 'no bytes were tunnelled to the backend');
    assert.equal(backend.requests.length, 1);
    const seen = backend.requests[0]!.headers;
    assert.equal(seen.upgrade, undefined);
    assert.equal(seen['http2-settings'], undefined);
    assert.doesNotMatch(String(seen.connection ?? ''), /upgrade|http2-settings/i);
  });

  test('a WebSocket upgrade offering h2c beside it reaches the backend as websocket only', async () => {
    const before = upgrades.length;
    const socket = connect(gateway.port('web'), '127.0.0.1');
    socket.write(
      'GET /public/ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    const head = await readUntil(socket, (t) => t.includes('\r\n\r\n'));
    socket.destroy();
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.deepEqual(upgrades.slice(before), ['websocket']);
  });
});

describe('Host confusion', () => {
  let good: Backend, evil: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    [good, evil] = await Promise.all([startEchoBackend('good'), startEchoBackend('evil')]);
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: h2c, protocol: http, address: 127.0.0.1, port: 0, h2c: true }
upstreams:
  good: { targets: [{ url: "${good.url}" }] }
  evil: { targets: [{ url: "${evil.url}" }] }
routes:
  - name: good
    match: { host: good.example }
    upstream: good
  - name: evil
    match: { host: evil.example }
    upstream: evil
  - name: any
    match: { path: / }
    upstream: evil
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([good.close(), evil.close()]);
  });

  const refused = async (head: string) => {
    const before = good.requests.length + evil.requests.length;
    const { text } = await rawExchange(port, `GET /x HTTP/1.1\r\n${head}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /application\/problem\+json/);
    assert.match(text, /TP_BAD_REQUEST/);
    assert.equal(good.requests.length + evil.requests.length, before, 'nothing was forwarded');
  };

  test('two Host headers are refused with 400 and nothing is forwarded', () =>
    refused('Host: good.example\r\nHost: evil.example'));
  test('a Host with a space is refused with 400', () => refused('Host: good.example evil.example'));
  test('a Host with userinfo (a@b) is refused with 400', () => refused('Host: evil.example@good.example'));
  test('a Host with a path is refused with 400', () => refused('Host: good.example/admin'));

  test('an absolute-form request is routed and forwarded by its own authority, not by the Host header', async () => {
    const { text } = await rawExchange(
      port,
      'GET http://good.example/x?y=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.equal(evil.requests.length, 0);
    const seen = good.requests.at(-1)!;
    assert.equal(seen.url, '/x?y=1');
    assert.equal(seen.headers.host, 'good.example');
    assert.equal(seen.headers['x-forwarded-host'], 'good.example');
  });

  test('an absolute-form request with userinfo is refused with 400', async () => {
    const { text } = await rawExchange(
      port,
      'GET http://evil.example@good.example/x HTTP/1.1\r\nHost: good.example\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 400 /);
  });

  test('ordinary hosts with ports, IPv6 literals and upper case still route', async () => {
    assert.equal(json(await request(port, '/', { headers: { host: 'GOOD.example:8080' } })).name, 'good');
    assert.equal(json(await request(port, '/', { headers: { host: '[::1]:8080' } })).name, 'evil');
  });

  test('over HTTP/2 a Host header naming another host than :authority is refused with 400', async () => {
    const session = h2connect(`http://127.0.0.1:${gateway.port('h2c')}`);
    try {
      const before = good.requests.length + evil.requests.length;
      const r = await h2Request(session, { ':path': '/x', ':authority': 'good.example', host: 'evil.example' });
      assert.equal(r.status, 400);
      assert.equal(good.requests.length + evil.requests.length, before);
      const ok = await h2Request(session, { ':path': '/x', ':authority': 'good.example' });
      assert.equal(ok.status, 200);
      assert.equal(JSON.parse(ok.body).name, 'good');
    } finally {
      session.close();
    }
  });
});

describe('underscore header names', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;

  before(async () => {
    backend = await startEchoBackend('app');
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: / }
    upstream: app
    plugins:
      - headers: { request: { remove: [x-auth-user] } }
`);
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  test('a forged X_Auth_User or Content_Length never reaches the backend (dropped by default)', async () => {
    const { text } = await rawExchange(
      gateway.port('web'),
      'GET /me HTTP/1.1\r\nHost: app.example\r\nX-Auth-User: mallory\r\nX_Auth_User: admin\r\nContent_Length: 5\r\nConnection: close\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 200 /);
    const seen = backend.requests.at(-1)!;
    assert.equal(seen.headers.x_auth_user, undefined);
    assert.equal(seen.headers['x-auth-user'], undefined);
    assert.equal(seen.headers.content_length, undefined);
    assert.ok(!seen.rawHeaders.some((h) => h.includes('_')), `backend saw ${seen.rawHeaders.join(' ')}`);
  });

  describe('limits.headersWithUnderscores', () => {
    let options: Awaited<ReturnType<typeof startGatewayYaml>>;
    before(async () => {
      options = await startGatewayYaml(`
listeners:
  - { name: strict, protocol: http, address: 127.0.0.1, port: 0, limits: { headersWithUnderscores: reject } }
  - { name: legacy, protocol: http, address: 127.0.0.1, port: 0, limits: { headersWithUnderscores: allow } }
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: / }
    upstream: app
`);
    });
    after(() => options.stop());

    test('headersWithUnderscores: reject answers 400 and forwards nothing', async () => {
      const before = backend.requests.length;
      const { text } = await rawExchange(
        options.port('strict'),
        'GET /me HTTP/1.1\r\nHost: app.example\r\nX_Auth_User: admin\r\n\r\n',
      );
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(text, /TP_BAD_REQUEST/);
      assert.equal(backend.requests.length, before);
    });

    test('headersWithUnderscores: allow forwards them as sent', async () => {
      const r = await request(options.port('legacy'), '/me', { headers: { x_legacy_token: 't1' } });
      assert.equal(json(r).headers.x_legacy_token, 't1');
    });
  });
});

describe('override headers and TRACE', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    // Answers like a framework that honours the override headers (IIS URL Rewrite, Symfony, Rails).
    backend = await startBackend((req, res) => {
      const path = req.headers['x-original-url'] ?? req.headers['x-rewrite-url'] ?? req.url;
      const method = req.headers['x-http-method-override'] ?? req.method;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end(
        JSON.stringify({ path, method, scheme: req.headers['x-forwarded-scheme'] ?? 'http', headers: req.headers }),
      );
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: pages
    match: { path: / }
    upstream: app
    plugins:
      - cache: {}
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  test("a client's X-Original-URL cannot poison the cached page the next client gets", async () => {
    const attacker = await request(port, '/home', {
      headers: { 'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-forwarded-scheme': 'nothttps' },
    });
    assert.equal(json(attacker).path, '/home');
    const victim = await request(port, '/home');
    assert.equal(victim.headers['x-cache'], 'HIT');
    const page = json(victim);
    assert.equal(page.path, '/home');
    assert.equal(page.scheme, 'http');
  });

  test("a client's X-HTTP-Method-Override, X-Original-URL, X-Rewrite-URL and X-Forwarded-Scheme are removed by default", async () => {
    const r = json(
      await request(port, '/plain', {
        method: 'POST',
        headers: {
          'x-http-method-override': 'DELETE',
          'x-original-url': '/admin',
          'x-rewrite-url': '/admin',
          'x-forwarded-scheme': 'https',
        },
      }),
    );
    assert.equal(r.method, 'POST');
    for (const h of ['x-http-method-override', 'x-original-url', 'x-rewrite-url', 'x-forwarded-scheme'])
      assert.equal(r.headers[h], undefined, h);
  });

  test('a route that lists an override header in forwardOverrideHeaders forwards that one only', async () => {
    const legacy = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: legacy
    match: { path: /legacy }
    upstream: app
    forwardOverrideHeaders: [X-HTTP-Method-Override]
`);
    try {
      const r = json(
        await request(legacy.port('web'), '/legacy', {
          method: 'POST',
          headers: { 'x-http-method-override': 'PATCH', 'x-original-url': '/admin' },
        }),
      );
      assert.equal(r.method, 'PATCH');
      assert.equal(r.headers['x-original-url'], undefined);
    } finally {
      await legacy.stop();
    }
  });

  test('TRACE is answered 405 problem+json and never forwarded (no cross-site tracing)', async () => {
    const before = backend.requests.length;
    const r = await request(port, '/home', { method: 'TRACE', headers: { cookie: 'session=secret' } });
    assertProblem(r, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.doesNotMatch(r.body, /secret/);
    assert.equal(backend.requests.length, before);
  });
});

describe('config of the request rules', () => {
  const base = `
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:9" }] } }
`;
  const problem = (text: string) => {
    try {
      parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems[0]!;
    }
    assert.fail('expected the config to be rejected');
  };

  test('forwardOverrideHeaders takes only the override headers, named with the line and key path', () => {
    const p = problem(`${base}routes:\n  - upstream: app\n    forwardOverrideHeaders: [X-Forwarded-For]\n`);
    assert.equal(p.code, 'TP_CONFIG_INVALID');
    assert.equal(p.line, 6);
    assert.equal(p.path, 'routes[0].forwardOverrideHeaders[0]');
    assert.match(p.message, /X-HTTP-Method-Override, X-Original-URL, X-Rewrite-URL, X-Forwarded-Scheme/);
  });

  test('headersWithUnderscores takes reject, drop or allow', () => {
    const p = problem(`${base}limits: { headersWithUnderscores: keep }\n`);
    assert.equal(p.path, 'limits.headersWithUnderscores');
    assert.match(p.message, /reject.*drop.*allow/);
  });
});
