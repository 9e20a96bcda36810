// The admin API against a real gateway: config (redacted, versioned), routes, upstreams, drain/undrain (next
// requests avoid the target, in-flight ones finish, kept across a reload), cache purge, reload, validate (problems
// as JSON, nothing applied), certificates, log level and the OpenAPI document.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { until } from '../helpers/wait.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const hostPort = (b: Backend) => `127.0.0.1:${b.port}`;

describe('upstreams and drain', () => {
  let a: Backend;
  let b: Backend;
  let gw: Gateway & { file: string };
  let yaml: (weightB: number) => string;
  /** Responses of the slow route wait here until the test releases them. */
  const held: ServerResponse[] = [];

  before(async () => {
    a = await startEchoBackend('a');
    b = await startEchoBackend('b');
    const slow = await startBackend((req, res) => {
      if (req.url === '/slow') held.push(res);
      else res.end('{"name":"slow"}');
    });
    backends.push(a, b, slow);
    yaml = (weightB) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${a.url}" }, { url: "${b.url}", weight: ${weightB} }] }
  slow: { targets: [{ url: "${slow.url}" }] }
routes:
  - { name: slow, match: { path: /slow }, upstream: slow }
  - { name: all, match: { path: / }, upstream: app }
admin: { port: 0 }
accessLog: { enabled: false }
`;
    gw = await startGatewayYaml(yaml(1));
  });
  after(() => gw.stop());
  const admin = (path: string, method = 'GET', body?: string) =>
    request(gw.admin!.port, path, { method, ...(body !== undefined ? { body } : {}) });
  const names = async (n: number) => {
    const out = new Set<string>();
    for (let i = 0; i < n; i++) out.add(json(await request(gw.port(), '/x')).name);
    return out;
  };

  test('GET /api/upstreams lists targets with health, weight, in-flight, breaker, ejection, drain', async () => {
    const r = await admin('/api/upstreams');
    assert.equal(r.status, 200, r.body);
    const app = json(r).upstreams.find((u: any) => u.name === 'app');
    assert.equal(app.breaker, null);
    assert.deepEqual(
      app.targets.map((t: any) => [t.target, t.weight, t.healthy, t.inFlight, t.ejected, t.drained]),
      [
        [hostPort(a), 1, true, 0, false, false],
        [hostPort(b), 1, true, 0, false, false],
      ],
    );
  });

  test('a drained target gets no new requests, finishes in-flight ones, stays drained across a reload, and comes back', async () => {
    assert.deepEqual(await names(4), new Set(['a', 'b']));
    const drained = await admin(`/api/upstreams/app/targets/${hostPort(a)}/drain`, 'POST');
    assert.equal(drained.status, 200, drained.body);
    assert.equal(json(drained).drained, true);
    assert.deepEqual(await names(6), new Set(['b']));

    // Kept across a reload (the new config changes the other target's weight).
    writeFileSync(gw.file, yaml(2));
    const reloaded = await admin('/api/reload', 'POST');
    assert.equal(json(reloaded).ok, true, reloaded.body);
    assert.equal(json(reloaded).version, 2);
    assert.deepEqual(await names(6), new Set(['b']));
    const listed = json(await admin('/api/upstreams')).upstreams.find((u: any) => u.name === 'app');
    assert.deepEqual(
      listed.targets.map((t: any) => [t.target, t.drained, t.weight]),
      [
        [hostPort(a), true, 1],
        [hostPort(b), false, 2],
      ],
    );

    const undrained = await admin(`/api/upstreams/app/targets/${hostPort(a)}/undrain`, 'POST');
    assert.equal(json(undrained).drained, false);
    assert.ok((await names(6)).has('a'));
  });

  test('a request in flight on a drained target finishes', async () => {
    const slowTarget = json(await admin('/api/upstreams')).upstreams.find((u: any) => u.name === 'slow').targets[0];
    const pending = request(gw.port(), '/slow');
    await until(() => held.length > 0, 'the slow request to reach its backend');
    const during = json(await admin('/api/upstreams')).upstreams.find((u: any) => u.name === 'slow').targets[0];
    assert.equal(during.inFlight, 1);
    await admin(`/api/upstreams/slow/targets/${slowTarget.target}/drain`, 'POST');
    // New requests find no target in rotation; the one in flight still completes.
    const refused = await request(gw.port(), '/slow');
    assert.equal(refused.status, 503);
    held.shift()!.end('{"name":"slow-done"}');
    const done = await pending;
    assert.equal(done.status, 200);
    assert.equal(json(done).name, 'slow-done');
    await admin(`/api/upstreams/slow/targets/${slowTarget.target}/undrain`, 'POST');
  });

  test('unknown upstreams and targets get 404 problem+json', async () => {
    const r1 = await admin('/api/upstreams/nope/targets/127.0.0.1:1/drain', 'POST');
    assert.equal(r1.status, 404);
    assert.equal(json(r1).code, 'TP_ADMIN_NOT_FOUND');
    const r2 = await admin('/api/upstreams/app/targets/127.0.0.1:1/drain', 'POST');
    assert.equal(json(r2).code, 'TP_ADMIN_NOT_FOUND');
  });

  test('GET /api/routes and GET /api/config (with its version)', async () => {
    const routes = json(await admin('/api/routes'));
    assert.deepEqual(
      routes.routes.map((r: any) => [r.name, r.terminal, r.upstream]),
      [
        ['slow', 'upstream', 'slow'],
        ['all', 'upstream', 'app'],
      ],
    );
    const config = json(await admin('/api/config'));
    assert.equal(config.version, gw.runtime.current.version);
    assert.equal(config.config.upstreams.app.targets[0].url, a.url);
    // Where it came from, and the hash of its text (what turnpike_config_info and `turnpike push` show).
    assert.equal(config.source, gw.file);
    assert.equal(config.hash, createHash('sha256').update(readFileSync(gw.file)).digest('hex').slice(0, 12));
  });

  test('a failed reload keeps the running config and says why', async () => {
    writeFileSync(gw.file, 'listeners: [{ name: web, protocol: http, port: nope }]\n');
    const r = json(await admin('/api/reload', 'POST'));
    assert.equal(r.ok, false);
    assert.match(r.error, /port/);
    assert.equal(r.version, gw.runtime.current.version);
    writeFileSync(gw.file, yaml(1));
  });
});

test('POST /api/config/validate: the problems as JSON, nothing applied', async () => {
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: hi, match: { path: / }, respond: { body: hi } }]
admin: { port: 0 }
`);
  try {
    const bad = await request(gw.admin!.port, '/api/config/validate', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'listeners: [{ name: web, protocol: http, port: 80 }]\nroutes: [{ match: { path: / }, upstream: missing }]\nlistners: 1\n',
    });
    assert.equal(bad.status, 200, bad.body);
    const body = json(bad);
    assert.equal(body.valid, false);
    const codes = body.problems.map((p: any) => `${p.code} ${p.path} line ${p.line}`);
    assert.ok(codes.includes('TP_CONFIG_UNKNOWN_KEY listners line 3'), codes.join('\n'));
    assert.ok(
      codes.some((c: string) => c.startsWith('TP_CONFIG_BAD_REFERENCE routes[0].upstream')),
      codes.join('\n'),
    );
    const good = await request(gw.admin!.port, '/api/config/validate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ listeners: [{ name: 'other', protocol: 'http', port: 81 }] }),
    });
    assert.deepEqual(json(good).valid, true);
    // Nothing was applied.
    assert.equal(gw.runtime.current.version, 1);
    assert.equal(gw.runtime.current.config.listeners[0]!.name, 'web');
    const tooBig = await request(gw.admin!.port, '/api/config/validate', {
      method: 'POST',
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(json(tooBig).code, 'TP_BODY_TOO_LARGE');
  } finally {
    await gw.stop();
  }
});

test('POST /api/cache/purge by URL and by prefix', async () => {
  let served = 0;
  const origin = await startBackend((req, res) => {
    served++;
    res.setHeader('cache-control', 'max-age=600');
    res.end(`${req.url} #${served}`);
  });
  backends.push(origin);
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { origin: { targets: [{ url: "${origin.url}" }] } }
routes: [{ name: catalog, match: { path: / }, upstream: origin, plugins: [{ cache: { store: memory } }] }]
admin: { port: 0 }
`);
  try {
    const get = async (path: string) => (await request(gw.port(), path)).headers['x-cache'];
    for (const p of ['/catalog/a', '/catalog/b', '/other']) {
      assert.equal(await get(p), 'MISS');
      assert.equal(await get(p), 'HIT');
    }
    const purge = (body: object) =>
      request(gw.admin!.port, '/api/cache/purge', { method: 'POST', body: JSON.stringify(body) });
    const byUrl = await purge({ url: `http://127.0.0.1:${gw.port()}/catalog/a` });
    assert.equal(byUrl.status, 200, byUrl.body);
    assert.equal(json(byUrl).purged, 1);
    assert.equal(await get('/catalog/a'), 'MISS');
    assert.equal(await get('/catalog/b'), 'HIT');
    const byPrefix = json(await purge({ prefix: '/catalog/' }));
    assert.equal(byPrefix.purged, 2);
    assert.equal(await get('/catalog/b'), 'MISS');
    assert.equal(await get('/other'), 'HIT');
    const bad = await purge({ path: '/x' });
    assert.equal(bad.status, 400);
    assert.equal(json(bad).code, 'TP_BAD_REQUEST');
  } finally {
    await gw.stop();
  }
});

test('GET /api/certificates: names and expiry of each served certificate', async () => {
  const { pki, serverCa } = makeTestPki();
  const site = pki.server(serverCa, { names: ['a.example.com', 'www.a.example.com'] });
  const gw = await startGatewayYaml(`
listeners:
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${site.certPath}", key: "${site.keyPath}" }] }
routes: [{ name: hi, match: { path: / }, respond: { body: hi } }]
admin: { port: 0 }
`);
  try {
    const r = await request(gw.admin!.port, '/api/certificates');
    assert.equal(r.status, 200, r.body);
    const [cert] = json(r).certificates;
    assert.equal(cert.listener, 'websecure');
    assert.deepEqual(cert.names, ['a.example.com', 'www.a.example.com']);
    assert.ok(Date.parse(cert.notAfter) > Date.now());
    assert.equal(typeof cert.daysLeft, 'number');
    assert.ok(!r.body.includes('PRIVATE KEY'));
  } finally {
    await gw.stop();
    pki.remove();
  }
});

test('PUT /api/log-level changes the gateway log level; a bad level is 400', async () => {
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { port: 0 }
`);
  try {
    const put = (body: string) => request(gw.admin!.port, '/api/log-level', { method: 'PUT', body });
    const r = await put('{"level": "warn"}');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(json(r), { level: 'warn', previous: 'silent' });
    assert.equal(gw.log.level, 'warn');
    const bad = await put('{"level": "loud"}');
    assert.equal(bad.status, 400);
    assert.equal(json(bad).code, 'TP_BAD_REQUEST');
    assert.equal((await put('not json')).status, 400);
  } finally {
    gw.log.level = 'silent'; // the test log is shared by every gateway of this process
    await gw.stop();
  }
});

test('GET /api/openapi.json: OpenAPI 3.1, every path, bodies from the validating schemas', async () => {
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { port: 0 }
`);
  try {
    const r = await request(gw.admin!.port, '/api/openapi.json');
    assert.equal(r.status, 200);
    const doc = json(r);
    assert.equal(doc.openapi, '3.1.0');
    for (const [path, method] of [
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/api/config', 'get'],
      ['/api/config/validate', 'post'],
      ['/api/routes', 'get'],
      ['/api/upstreams', 'get'],
      ['/api/upstreams/{name}/targets/{target}/drain', 'post'],
      ['/api/upstreams/{name}/targets/{target}/undrain', 'post'],
      ['/api/cache/purge', 'post'],
      ['/api/reload', 'post'],
      ['/api/events', 'get'],
      ['/api/certificates', 'get'],
      ['/api/log-level', 'put'],
      ['/api/openapi.json', 'get'],
    ])
      assert.ok(doc.paths[path!]?.[method!], `${method} ${path} missing`);
    assert.deepEqual(doc.paths['/healthz'].get.security, []);
    assert.deepEqual(doc.paths['/api/config'].get.security, [{ bearer: [] }]);
    const level = doc.paths['/api/log-level'].put.requestBody.content['application/json'].schema;
    assert.deepEqual(level.properties.level.enum, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
    const purge = doc.paths['/api/cache/purge'].post.requestBody.content['application/json'].schema;
    assert.equal(purge.anyOf.length, 2);
  } finally {
    await gw.stop();
  }
});
