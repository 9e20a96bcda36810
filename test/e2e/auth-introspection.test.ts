import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closedPort } from '../helpers/ports.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const CLIENT_ID = 'turnpike gw';
const CLIENT_SECRET = 's3cret:with/odd+chars';

describe('oauth2-introspection authentication', () => {
  let backend: Backend;
  let idp: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;
  /** Introspection calls per token, as the authorization server counted them. */
  const calls = new Map<string, number>();
  const seen: { authorization?: string; contentType?: string; body: string }[] = [];
  /** token → its introspection answer (computed at call time). */
  const answers = new Map<string, () => object>();
  const now = () => Math.floor(Date.now() / 1000);
  const countOf = (token: string) => calls.get(token) ?? 0;

  before(async () => {
    answers.set('good', () => ({
      active: true,
      sub: 'user-1',
      scope: 'reports:read reports:write',
      client_id: 'app',
      exp: now() + 300,
    }));
    answers.set('revoked', () => ({ active: false }));
    answers.set('by-username', () => ({ active: true, username: 'user-1', exp: now() + 300 }));
    answers.set('by-client', () => ({ active: true, client_id: 'batch-job' }));
    answers.set('burst', () => ({ active: true, sub: 'user-2', exp: now() + 300 }));
    answers.set('lasting', () => ({ active: true, sub: 'user-3', exp: now() + 3600 }));
    answers.set('stale-exp', () => ({ active: true, sub: 'user-4', exp: now() - 5 }));
    idp = await startBackend((req, res) => {
      if (req.url === '/slow') return; // never answers: the gateway's timeout must fire
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        seen.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
        const form = new URLSearchParams(body);
        const token = form.get('token') ?? '';
        calls.set(token, countOf(token) + 1);
        if (req.url === '/broken') {
          res.writeHead(502).end();
          return;
        }
        const answer = answers.get(token)?.() ?? { active: false };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    backend = await startEchoBackend('api');
    const refusing = await closedPort();
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
consumers:
  - { name: mobile, groups: [partners], credentials: { apiKeys: [], jwt: { subject: user-1 } } }
upstreams:
  api: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: /api }
    upstream: api
    plugins:
      - oauth2-introspection: { url: "${idp.url}/introspect", clientId: "${CLIENT_ID}", clientSecret: "${CLIENT_SECRET}", cacheTtl: 30s }
  - match: { path: /short-ttl }
    upstream: api
    plugins:
      - oauth2-introspection: { url: "${idp.url}/introspect", clientId: "${CLIENT_ID}", clientSecret: "${CLIENT_SECRET}", cacheTtl: 1s, hideCredentials: true }
  - match: { path: /slow }
    upstream: api
    plugins:
      - oauth2-introspection: { url: "${idp.url}/slow", clientId: x, clientSecret: y, cacheTtl: 30s, timeout: 300ms }
  - match: { path: /broken }
    upstream: api
    plugins:
      - oauth2-introspection: { url: "${idp.url}/broken", clientId: x, clientSecret: y, cacheTtl: 30s }
  - match: { path: /down }
    upstream: api
    plugins:
      - oauth2-introspection: { url: "http://127.0.0.1:${refusing}/introspect", clientId: x, clientSecret: y, cacheTtl: 30s }
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([backend?.close(), idp?.close()]);
  });

  const get = (path: string, token?: string) =>
    request(port, path, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  test('an active token passes; the call is an RFC 7662 form POST with HTTP Basic client authentication', async () => {
    const r = await get('/api/reports', 'good');
    assert.equal(r.status, 200);
    const echo = json(r);
    assert.equal(echo.url, '/api/reports');
    assert.equal(echo.headers.authorization, 'Bearer good');
    assert.equal(echo.headers['x-consumer-name'], 'mobile', 'sub user-1 is the consumer mobile');
    assert.equal(echo.headers['x-consumer-groups'], 'partners');
    const call = seen.find((s) => new URLSearchParams(s.body).get('token') === 'good')!;
    assert.equal(call.contentType, 'application/x-www-form-urlencoded');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(call.body)), {
      token: 'good',
      token_type_hint: 'access_token',
    });
    // RFC 6749 §2.3.1: id and secret are form-encoded, then Base64 of "id:secret".
    const decoded = Buffer.from(call.authorization!.replace(/^Basic /, ''), 'base64').toString();
    assert.equal(decoded, `${encodeURIComponent(CLIENT_ID).replace(/%20/g, '+')}:${encodeURIComponent(CLIENT_SECRET)}`);
  });

  test('an inactive token is refused with an invalid_token challenge, and the refusal is cached briefly', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get('/api', 'revoked');
      assert.equal(r.status, 401);
      assert.equal(json(r).code, 'TP_UNAUTHENTICATED');
      assert.match(
        String(r.headers['www-authenticate']),
        /^Bearer realm="turnpike", error="invalid_token", error_description="[^"]+"$/,
      );
    }
    assert.equal(countOf('revoked'), 1);
  });

  test('a missing token gets the bare Bearer challenge and no introspection call', async () => {
    const before = seen.length;
    const r = await get('/api');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="turnpike"');
    assert.equal(seen.length, before);
  });

  test('a cache hit avoids a second call; concurrent requests with a new token share one call', async (t) => {
    const first = countOf('good');
    for (let i = 0; i < 5; i++) assert.equal((await get('/api', 'good')).status, 200);
    assert.equal(countOf('good'), first, 'served from the cache');
    const statuses = await Promise.all(Array.from({ length: 20 }, () => get('/api', 'burst').then((r) => r.status)));
    assert.ok(statuses.every((s) => s === 200));
    assert.equal(countOf('burst'), 1);
    t.diagnostic(
      `5 repeated + 20 concurrent requests → ${countOf('good') - first + countOf('burst')} introspection call(s)`,
    );
  });

  test('the subject falls back to username, then client_id', async () => {
    const r = await get('/api', 'by-username');
    assert.equal(r.status, 200);
    assert.equal(json(r).headers['x-consumer-name'], 'mobile', 'username user-1 is the consumer mobile');
    const c = await get('/api', 'by-client');
    assert.equal(c.status, 200);
    assert.equal(json(c).headers['x-consumer-name'], undefined, 'batch-job is no configured consumer');
  });

  test('an "active" answer whose exp is already past is refused', async () => {
    assert.equal((await get('/api', 'stale-exp')).status, 401);
  });

  test('expiry is respected: a cached answer lives until min(cacheTtl, exp)', async (t) => {
    // exp 2 s ahead, cacheTtl 30 s: served from the cache until exp, then asked again (and now inactive).
    answers.set('expiring', () => {
      const exp = expiresAt;
      return exp > now() ? { active: true, sub: 'user-5', exp } : { active: false };
    });
    const expiresAt = now() + 2;
    assert.equal((await get('/api', 'expiring')).status, 200);
    const start = performance.now();
    const status = await until(
      async () => {
        const s = (await get('/api', 'expiring')).status;
        return s !== 200 && s;
      },
      'an answer other than 200',
      10_000,
      50,
    );
    const refused = (performance.now() - start) / 1000;
    assert.equal(status, 401);
    assert.equal(countOf('expiring'), 2, 'one call before exp, one after');
    t.diagnostic(
      `token with exp ≈ 2 s ahead (whole seconds) refused ${refused.toFixed(2)} s later, after ${countOf('expiring')} calls`,
    );

    // cacheTtl 1 s, exp an hour ahead: asked again after about 1 s.
    assert.equal((await get('/short-ttl', 'lasting')).status, 200);
    const t0 = performance.now();
    await until(
      async () => {
        const r = await get('/short-ttl', 'lasting');
        assert.equal(r.status, 200);
        assert.equal(json(r).headers.authorization, undefined, 'hideCredentials');
        return countOf('lasting') >= 2;
      },
      'a second introspection call',
      10_000,
      50,
    );
    const refetch = (performance.now() - t0) / 1000;
    assert.equal(countOf('lasting'), 2);
    assert.ok(refetch >= 0.9 && refetch < 3, `second call after ${refetch.toFixed(2)} s`);
    t.diagnostic(`cacheTtl 1s: second introspection call after ${refetch.toFixed(2)} s`);
  });

  test('an unreachable, slow or failing introspection endpoint answers 503 TP_AUTH_UNAVAILABLE (Kong: 500), not 401', async (t) => {
    for (const path of ['/down', '/broken']) {
      const r = await get(path, 'good');
      assert.equal(r.status, 503, path);
      assert.equal(json(r).code, 'TP_AUTH_UNAVAILABLE');
      assert.equal(r.headers['www-authenticate'], undefined);
    }
    const start = performance.now();
    const r = await get('/slow', 'good');
    const ms = performance.now() - start;
    assert.equal(r.status, 503);
    assert.ok(ms >= 280 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
    t.diagnostic(`timeout 300ms: answered 503 after ${ms.toFixed(0)} ms`);
    // Failures are not cached: the next request asks again.
    const before = countOf('good');
    await get('/broken', 'good');
    assert.equal(countOf('good'), before + 1);
  });
});
