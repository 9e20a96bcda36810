// cors: preflights answered at the gateway (never forwarded), CORS headers on actual responses for allowed
// origins only, exact / pattern / wildcard origins, and Vary: Origin on every response.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { corsPlugin } from '../../src/plugins/cors.ts';
import type { PluginEnv } from '../../src/plugins/types.ts';
import { pluginConfigProblems } from '../helpers/config.ts';
import {
  json,
  request,
  startBackend,
  startEchoBackend,
  startGatewayYaml,
  type Backend,
  type SimpleResponse,
} from '../helpers/servers.ts';

/** The Access-Control-* and Vary headers of a response, so deepEqual checks them exactly. */
function corsHeaders(r: SimpleResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(r.headers)) {
    if (name.startsWith('access-control-') || name === 'vary') out[name] = String(value);
  }
  return out;
}

/** One plugin entry's config problems. */
const configProblems = (plugin: string): string[] => pluginConfigProblems(`      - ${plugin}`);

test('an origin pattern that spans a whole top-level domain loads with a warning', () => {
  const warnings: string[] = [];
  const env = { warn: (m: string) => warnings.push(m) } as unknown as PluginEnv;
  const config = corsPlugin.schema.parse({
    origins: ['https://app.example.com', 'https://admin.example.com', 'https://*.partner.example', 'https://*.com'],
    exposeHeaders: ['x-total'],
    credentials: true,
  });
  corsPlugin.create(config, env);
  assert.deepEqual(warnings, ['cors origin https://*.com allows every site under .com; was a narrower pattern meant?']);
});

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

describe('cors', () => {
  let backend: Backend;
  let corsy: Backend; // an upstream that does its own (too permissive) CORS
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    backend = await startEchoBackend('app');
    corsy = await startBackend((_req, res) => {
      res.writeHead(200, {
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'x-secret',
        vary: 'Accept-Encoding',
        'content-type': 'text/plain',
      });
      res.end('corsy');
    });
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
  corsy: { targets: [{ url: "${corsy.url}" }] }
routes:
  - match: { path: /strict }
    upstream: app
    plugins:
      - cors:
          origins: [https://app.example.com, "https://*.partner.example", "http://localhost:3000"]
          methods: [GET, POST, PUT]
          headers: [Content-Type, X-Api-Key]
          exposeHeaders: [X-Request-Id, X-Total]
          credentials: true
          maxAge: 10m
  - match: { path: /open }
    upstream: app
    plugins:
      - cors: { origins: ["*"] }
  - match: { path: /corsy }
    upstream: corsy
    plugins:
      - cors: { origins: [https://app.example.com] }
  - match: { path: /refused }
    upstream: app
    plugins:
      - cors: { origins: [https://app.example.com] }
      - ip-filter: { deny: [127.0.0.0/8] }
  - match: { path: /authed }
    upstream: app
    plugins:
      - key-auth: {}
      - cors: { origins: [https://app.example.com] }
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([backend.close(), corsy.close()]);
  });

  const preflight = (path: string, origin: string, extra: Record<string, string> = {}) =>
    request(port, path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', ...extra } });

  test('a preflight from an allowed origin is answered 204 at the gateway and never reaches the upstream', async () => {
    const seen = backend.requests.length;
    const r = await preflight('/strict/items', 'https://app.example.com', {
      'access-control-request-headers': 'content-type, x-api-key',
    });
    assert.equal(r.status, 204);
    assert.equal(r.body, '');
    assert.deepEqual(corsHeaders(r), {
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST, PUT',
      'access-control-allow-headers': 'content-type, x-api-key',
      'access-control-max-age': '600',
      vary: PREFLIGHT_VARY,
    });
    assert.equal(backend.requests.length, seen, 'the backend must see no preflight');
  });

  test('a preflight from a disallowed origin gets 204 without any CORS header (the browser then refuses)', async () => {
    const seen = backend.requests.length;
    const r = await preflight('/strict', 'https://evil.example');
    assert.equal(r.status, 204);
    assert.deepEqual(corsHeaders(r), { vary: PREFLIGHT_VARY });
    assert.equal(backend.requests.length, seen);
  });

  test('with no headers configured, a preflight echoes the requested headers (as Kong does), and * answers *', async () => {
    const r = await preflight('/open', 'https://anyone.example', {
      'access-control-request-headers': 'X-Custom, Authorization',
    });
    assert.equal(r.status, 204);
    assert.deepEqual(corsHeaders(r), {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, HEAD, PUT, PATCH, POST, DELETE',
      'access-control-allow-headers': 'X-Custom, Authorization',
      vary: PREFLIGHT_VARY,
    });
    // A requested-headers value that is not a list of header names is not echoed.
    const odd = await preflight('/open', 'https://anyone.example', {
      'access-control-request-headers': 'x-a, <script>',
    });
    assert.equal(odd.headers['access-control-allow-headers'], undefined);
  });

  test('an actual request from an allowed origin is forwarded and gets Allow-Origin, Credentials, Expose-Headers and Vary', async () => {
    const r = await request(port, '/strict/items', {
      method: 'POST',
      headers: { origin: 'https://app.example.com' },
      body: '{}',
    });
    assert.equal(r.status, 200);
    const seen = json(r);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.headers.origin, 'https://app.example.com');
    assert.deepEqual(corsHeaders(r), {
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id, x-total',
      vary: 'Origin',
    });
  });

  test('an actual request from a disallowed origin is forwarded untouched and gets no CORS headers', async () => {
    const r = await request(port, '/strict', { headers: { origin: 'https://evil.example' } });
    assert.equal(r.status, 200);
    assert.deepEqual(corsHeaders(r), { vary: 'Origin' });
  });

  test('a request without Origin passes untouched; only Vary: Origin is added (so caches key on it)', async () => {
    const r = await request(port, '/strict/x', { headers: { 'x-api-key': 'k' } });
    assert.equal(r.status, 200);
    assert.equal(json(r).headers['x-api-key'], 'k');
    assert.deepEqual(corsHeaders(r), { vary: 'Origin' });
    // OPTIONS without Access-Control-Request-Method is not a preflight: it is forwarded.
    const options = await request(port, '/strict/x', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com' },
    });
    assert.equal(json(options).method, 'OPTIONS');
    assert.equal(options.headers['access-control-allow-origin'], 'https://app.example.com');
  });

  test('https://*.partner.example matches one or more subdomain labels and nothing else', async () => {
    const allowed = async (origin: string) =>
      (await request(port, '/strict', { headers: { origin } })).headers['access-control-allow-origin'] === origin;
    for (const origin of [
      'https://a.partner.example',
      'https://a.b.partner.example',
      'https://x-1.partner.example',
      'http://localhost:3000',
    ]) {
      assert.ok(await allowed(origin), `${origin} should be allowed`);
    }
    for (const origin of [
      'https://partner.example', // the bare apex is not a subdomain
      'https://.partner.example',
      'https://evilpartner.example',
      'https://a.partner.example.evil.com',
      'https://evil.com/.partner.example',
      'https://evil.com?.partner.example',
      'https://evil.com#.partner.example',
      'https://a.partner.example:8443', // another port is another origin
      'http://a.partner.example', // and so is another scheme
      'http://localhost:3001',
      'https://app.example.com.evil.com',
      'null',
    ]) {
      assert.equal(await allowed(origin), false, `${origin} must not be allowed`);
    }
  });

  test("the gateway owns CORS headers: the upstream's are replaced for allowed origins and removed otherwise; Vary is appended to", async () => {
    const ok = await request(port, '/corsy', { headers: { origin: 'https://app.example.com' } });
    assert.equal(ok.body, 'corsy');
    assert.deepEqual(corsHeaders(ok), {
      'access-control-allow-origin': 'https://app.example.com',
      vary: 'Accept-Encoding, Origin',
    });
    const evil = await request(port, '/corsy', { headers: { origin: 'https://evil.example' } });
    assert.deepEqual(corsHeaders(evil), { vary: 'Accept-Encoding, Origin' });
    const plain = await request(port, '/corsy');
    assert.deepEqual(corsHeaders(plain), {
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'x-secret',
      vary: 'Accept-Encoding, Origin',
    });
  });

  test("a later plugin's refusal carries the CORS headers, so the browser can read the error", async () => {
    const r = await request(port, '/refused', { headers: { origin: 'https://app.example.com' } });
    assert.equal(r.status, 403);
    assert.equal(json(r).code, 'TP_IP_FORBIDDEN');
    assert.deepEqual(corsHeaders(r), { 'access-control-allow-origin': 'https://app.example.com', vary: 'Origin' });
    // The preflight for it is still answered: it runs before the access check that follows it.
    assert.equal((await preflight('/refused', 'https://app.example.com')).status, 204);
  });

  test('preflights need no credentials: cors answers them before authentication, wherever it is listed', async () => {
    const seen = backend.requests.length;
    const r = await preflight('/authed', 'https://app.example.com');
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    const unauthenticated = await request(port, '/authed', { headers: { origin: 'https://app.example.com' } });
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(backend.requests.length, seen);
  });

  test('config: * with credentials, and origins with a path or without a scheme, are refused with a clear message', () => {
    assert.match(
      configProblems('cors: { origins: ["*"], credentials: true }').join('\n'),
      /cors\.origins.*origins "\*" cannot be used with credentials: true/,
    );
    for (const bad of [
      'https://app.example.com/',
      'app.example.com',
      'https://app.example.com/path',
      'https://*.*.example.com',
      'https://a.*.example.com',
      'https://*example.com',
    ]) {
      assert.match(
        configProblems(`cors: { origins: ["${bad}"] }`).join('\n'),
        /expected an origin such as https:\/\/app\.example\.com/,
        bad,
      );
    }
    assert.deepEqual(
      configProblems('cors: { origins: ["https://App.Example.com:443", "http://[::1]:8080"], maxAge: 1h }'),
      [],
    );
    assert.match(configProblems('cors: { origins: [] }').join('\n'), /origins/);
  });
});
