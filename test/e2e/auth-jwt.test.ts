import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { closedPort } from '../helpers/ports.ts';
import {
  json,
  request,
  startBackend,
  startEchoBackend,
  startGatewayYaml,
  tempDir,
  type Backend,
} from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const ISSUER = 'https://id.example.com';
const SECRET = 'a-shared-hs256-secret-of-32-bytes-or-more!';

type Keys = Awaited<ReturnType<typeof generateKeyPair>>;

function sign(
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string },
  claims: JWTPayload = {},
  options: { exp?: number; nbf?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'user-1', scope: 'reports:read', ...claims })
    .setProtectedHeader(header)
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : ISSUER)
    .setAudience(claims.aud ?? 'reports')
    .setIssuedAt(now)
    .setNotBefore(options.nbf ?? now)
    .setExpirationTime(options.exp ?? now + 300)
    .sign(key);
}

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('jwt authentication', () => {
  let backend: Backend;
  let idp: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;
  let rsa: Keys, rsa2: Keys, intruder: Keys, es: Keys, ed: Keys;
  let rsaPem: string;
  /** What the JWKS server publishes; tests add keys to it. */
  const published: object[] = [];
  let jwksFetches = 0;

  const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
    request(port, path, { headers: token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers } });

  before(async () => {
    [rsa, rsa2, intruder, es, ed] = await Promise.all([
      generateKeyPair('RS256'),
      generateKeyPair('RS256'),
      generateKeyPair('RS256'),
      generateKeyPair('ES256'),
      generateKeyPair('EdDSA'),
    ]);
    rsaPem = await exportSPKI(rsa.publicKey);
    published.push({ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' });
    idp = await startBackend((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.end(JSON.stringify({ keys: published }));
    });
    backend = await startEchoBackend('api');
    const refusing = await closedPort();
    const dir = tempDir();
    writeFileSync(join(dir, 'rsa.pem'), rsaPem);
    writeFileSync(join(dir, 'es256.pem'), await exportSPKI(es.publicKey));
    const edJwk = JSON.stringify({ ...(await exportJWK(ed.publicKey)), kid: 'ed-1' });
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
consumers:
  - { name: mobile, groups: [partners], credentials: { apiKeys: [], jwt: { subject: user-1 } } }
upstreams:
  api: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: /verbatim }
    upstream: api
    plugins:
      - jwt: { jwksUri: "https://id.example.com/.well-known/jwks.json", issuer: "https://id.example.com", audience: reports, algorithms: [RS256] }
  - match: { path: /jwks }
    upstream: api
    plugins:
      - jwt: { jwksUri: "${idp.url}/.well-known/jwks.json", issuer: "https://id.example.com", audience: reports, algorithms: [RS256] }
  - match: { path: /mixed }
    upstream: api
    plugins:
      - jwt: { keys: ["file:${join(dir, 'rsa.pem')}", { secret: "${SECRET}" }], issuer: "${ISSUER}", audience: reports, algorithms: [RS256, HS256] }
  - match: { path: /rsa-or-hs }
    upstream: api
    plugins:
      - jwt: { keys: ["file:${join(dir, 'rsa.pem')}"], algorithms: [RS256, HS256] }
  - match: { path: /es256 }
    upstream: api
    plugins:
      - jwt: { keys: ["file:${join(dir, 'es256.pem')}"], algorithms: [ES256] }
  - match: { path: /eddsa }
    upstream: api
    plugins:
      - jwt: { keys: [${edJwk}], algorithms: [EdDSA] }
  - match: { path: /hs256 }
    upstream: api
    plugins:
      - jwt: { keys: [{ secret: "${SECRET}" }], algorithms: [HS256], hideCredentials: true, query: access_token, cookie: tp_token }
  - match: { path: /no-skew }
    upstream: api
    plugins:
      - jwt: { keys: [{ secret: "${SECRET}" }], algorithms: [HS256], clockSkew: 0s }
  - match: { path: /jwks-down }
    upstream: api
    plugins:
      - jwt: { jwksUri: "http://127.0.0.1:${refusing}/jwks.json", algorithms: [RS256] }
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway?.stop();
    await Promise.all([backend?.close(), idp?.close()]);
  });

  async function assertRefused(path: string, token: string, description: RegExp) {
    const r = await get(path, token);
    assert.equal(r.status, 401);
    assert.equal(json(r).code, 'TP_UNAUTHENTICATED');
    const challenge = String(r.headers['www-authenticate']);
    assert.match(challenge, /^Bearer realm="turnpike", error="invalid_token", error_description="[^"]+"$/);
    assert.match(challenge, description);
  }

  test('a valid RS256 token from the JWKS passes, and the backend sees the request and the consumer', async () => {
    const r = await get('/jwks/reports', await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }));
    assert.equal(r.status, 200);
    const echo = json(r);
    assert.equal(echo.name, 'api');
    assert.equal(echo.url, '/jwks/reports');
    assert.ok(echo.headers.authorization.startsWith('Bearer '), 'the token is forwarded unless hideCredentials');
    assert.equal(echo.headers['x-consumer-name'], 'mobile');
    assert.equal(echo.headers['x-consumer-groups'], 'partners');
  });

  test('a request without a token gets the bare Bearer challenge (the verbatim contract config loads)', async () => {
    for (const path of ['/verbatim', '/jwks']) {
      const r = await get(path);
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="turnpike"');
    }
    assert.equal(backend.requests.filter((q) => q.url === '/verbatim').length, 0);
  });

  test('a forged signature (another key claiming kid k1) is refused', async () => {
    await assertRefused('/jwks', await sign(intruder.privateKey, { alg: 'RS256', kid: 'k1' }), /signature/);
  });

  test('an expired token is refused; one expired within the 30 s clock skew passes', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRefused(
      '/jwks',
      await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }, {}, { exp: now - 120, nbf: now - 600 }),
      /expired/,
    );
    const r = await get(
      '/jwks',
      await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }, {}, { exp: now - 10, nbf: now - 600 }),
    );
    assert.equal(r.status, 200);
  });

  test('a token not yet valid (nbf in the future beyond the skew) is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRefused(
      '/jwks',
      await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }, {}, { nbf: now + 120, exp: now + 600 }),
      /not yet valid/,
    );
  });

  test('a wrong issuer or a wrong audience is refused', async () => {
    await assertRefused(
      '/jwks',
      await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }, { iss: 'https://evil.example.com' }),
      /issuer or audience/,
    );
    await assertRefused(
      '/jwks',
      await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }, { aud: 'billing' }),
      /issuer or audience/,
    );
  });

  test('alg "none" is refused, with or without a signature part', async () => {
    const now = Math.floor(Date.now() / 1000);
    const body = b64({ sub: 'user-1', iss: ISSUER, aud: 'reports', exp: now + 300 });
    for (const path of ['/jwks', '/mixed']) {
      await assertRefused(path, `${b64({ alg: 'none', typ: 'JWT' })}.${body}.`, /algorithm/);
      await assertRefused(path, `${b64({ alg: 'none', kid: 'k1' })}.${body}.c2lnbmF0dXJl`, /algorithm/);
    }
  });

  test('key confusion: an HS256 token signed with the RSA public key PEM as the secret is refused', async () => {
    const forged = await sign(new TextEncoder().encode(rsaPem), { alg: 'HS256', kid: 'k1' });
    // Only RS256 configured: the algorithm alone refuses it.
    await assertRefused('/jwks', forged, /algorithm/);
    // RS256 and HS256 configured, with that very RSA key: the RSA key is never used as an HMAC secret.
    await assertRefused('/mixed', await sign(new TextEncoder().encode(rsaPem), { alg: 'HS256' }), /signature/);
    // The classic setup for the attack (both algorithms allowed, only the RSA key configured): still refused.
    await assertRefused('/rsa-or-hs', await sign(new TextEncoder().encode(rsaPem), { alg: 'HS256' }), /signature/);
    assert.equal((await get('/rsa-or-hs', await sign(rsa.privateKey, { alg: 'RS256' }))).status, 200);
    // The same route accepts the RSA key for RS256 and the real secret for HS256.
    assert.equal((await get('/mixed', await sign(rsa.privateKey, { alg: 'RS256' }))).status, 200);
    assert.equal((await get('/mixed', await sign(new TextEncoder().encode(SECRET), { alg: 'HS256' }))).status, 200);
  });

  test('ES256 (PEM file) and EdDSA (JWK) static keys verify their tokens, and refuse others', async () => {
    assert.equal((await get('/es256', await sign(es.privateKey, { alg: 'ES256' }))).status, 200);
    assert.equal((await get('/eddsa', await sign(ed.privateKey, { alg: 'EdDSA', kid: 'ed-1' }))).status, 200);
    await assertRefused('/es256', await sign(ed.privateKey, { alg: 'EdDSA' }), /algorithm/);
    await assertRefused(
      '/eddsa',
      await sign((await generateKeyPair('EdDSA')).privateKey, { alg: 'EdDSA', kid: 'ed-1' }),
      /signature/,
    );
  });

  test('HS256 with a static secret works; hideCredentials drops the header, and a query parameter or a cookie can carry the token', async () => {
    const token = await sign(new TextEncoder().encode(SECRET), { alg: 'HS256' });
    const r = await get('/hs256', token);
    assert.equal(r.status, 200);
    assert.equal(json(r).headers.authorization, undefined);
    const q = await request(port, `/hs256?a=1&access_token=${token}&b=2`);
    assert.equal(q.status, 200);
    assert.equal(json(q).url, '/hs256?a=1&b=2');
    const c = await request(port, '/hs256', { headers: { cookie: `theme=dark; tp_token=${token}; lang=en` } });
    assert.equal(c.status, 200);
    assert.equal(json(c).headers.cookie, 'theme=dark; lang=en');
    await assertRefused(
      '/hs256',
      await sign(new TextEncoder().encode(SECRET.toUpperCase()), { alg: 'HS256' }),
      /signature/,
    );
  });

  test('a token in the query or a cookie is read by the shared rules: the first occurrence of a name, a quoted cookie value', async () => {
    const token = await sign(new TextEncoder().encode(SECRET), { alg: 'HS256' });
    const quoted = await request(port, '/hs256', { headers: { cookie: `theme=dark;\ttp_token="${token}"` } });
    assert.equal(quoted.status, 200, 'a DQUOTEd cookie value is the value inside (RFC 6265 4.1.1, as Envoy reads it)');
    assert.equal(json(quoted).headers.cookie, 'theme=dark');
    const cookieFirst = await request(port, '/hs256', { headers: { cookie: `tp_token=; tp_token=${token}` } });
    assert.equal(cookieFirst.status, 401, 'the first tp_token is the one read, and it is empty');
    const queryFirst = await request(port, `/hs256?access_token=&access_token=${token}`);
    assert.equal(queryFirst.status, 401, 'the first access_token is the one read, and it is empty');
    const encodedName = await request(port, `/hs256?access%5Ftoken=${token}&a=1`);
    assert.equal(encodedName.status, 200);
    assert.equal(json(encodedName).url, '/hs256?a=1', 'hideCredentials removes the parameter whatever its spelling');
  });

  test('a token in the query is redacted in the access log, as an API key is', async () => {
    const log = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
accessLog: { enabled: true, output: ${log} }
upstreams: { api: { targets: [{ url: "${backend.url}" }] } }
routes:
  - match: { path: / }
    upstream: api
    plugins:
      - key-auth: { query: apikey }
      - jwt: { keys: [{ secret: "${SECRET}" }], algorithms: [HS256], query: access_token }
`);
    const token = await sign(new TextEncoder().encode(SECRET), { alg: 'HS256' });
    try {
      const r = await request(gw.port('web'), `/items?apikey=not-a-key&access_token=${token}&b=2`);
      assert.equal(r.status, 200);
      assert.equal(
        json(r).url,
        `/items?apikey=not-a-key&access_token=${token}&b=2`,
        'forwarded as sent without hideCredentials',
      );
      assert.equal((await request(gw.port('web'), '/items?access_token=not.a-jwt')).status, 401);
    } finally {
      await gw.stop();
    }
    const text = readFileSync(log, 'utf8');
    assert.ok(
      !text.includes(token) && !text.includes('not-a-key') && !text.includes('not.a-jwt'),
      'no credential in the access log',
    );
    assert.match(
      text,
      /"path":"\/items\?apikey=\[REDACTED\]&access_token=\[REDACTED\]&b=2"/,
      "both plugins' redactions are kept",
    );
    assert.match(text, /"path":"\/items\?access_token=\[REDACTED\]"/, 'a token that does not verify too');
  });

  test('a verified token is remembered, but never past its exp', async (t) => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await sign(new TextEncoder().encode(SECRET), { alg: 'HS256' }, {}, { exp });
    assert.equal((await get('/no-skew', token)).status, 200);
    const status = await until(
      async () => {
        const s = (await get('/no-skew', token)).status;
        return s !== 200 && s;
      },
      'an answer other than 200',
      10_000,
      50,
    );
    assert.equal(status, 401);
    const late = Date.now() - exp * 1000;
    assert.ok(late >= 0 && late < 1000, `refused ${late} ms after exp`);
    t.diagnostic(
      `clockSkew 0s: token refused ${late} ms after its exp (the 30 s verified-token cache does not outlive exp)`,
    );
  });

  test('a malformed token is refused as malformed', async () => {
    await assertRefused('/jwks', 'not.a-jwt', /malformed/);
  });

  test('key rotation: a key newly published in the JWKS is honoured without restart; unknown kids do not flood the IdP', async (t) => {
    const before = jwksFetches;
    // A flood of made-up kids: at most one refetch per 10 s interval.
    const flood = await Promise.all(
      Array.from(
        { length: 40 },
        async (_, i) =>
          (await get('/jwks', await sign(intruder.privateKey, { alg: 'RS256', kid: `bogus-${i}` }))).status,
      ),
    );
    assert.ok(flood.every((s) => s === 401));
    const floodFetches = jwksFetches - before;
    assert.ok(floodFetches <= 1, `40 unknown kids caused ${floodFetches} JWKS fetches`);
    t.diagnostic(`40 requests with unknown kids → ${floodFetches} JWKS fetch(es)`);

    published.push({ ...(await exportJWK(rsa2.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' });
    const token = await sign(rsa2.privateKey, { alg: 'RS256', kid: 'k2' });
    const start = performance.now();
    let tries = 0;
    await until(
      async () => {
        tries++;
        return (await get('/jwks', token)).status === 200;
      },
      'the new kid k2 to be honoured',
      60_000,
      250,
    );
    const seconds = (performance.now() - start) / 1000;
    t.diagnostic(
      `new kid k2 honoured after ${seconds.toFixed(1)} s (${tries} tries, ${jwksFetches - before} JWKS fetches in this test)`,
    );
    // The old key still works.
    assert.equal((await get('/jwks', await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }))).status, 200);
  });

  test('config: "none" is not an algorithm, and a static key unusable with the configured algorithms fails the load', async () => {
    const base = `listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { api: { targets: [{ url: "${backend.url}" }] } }
routes:
  - match: { path: / }
    upstream: api
    plugins:
`;
    await assert.rejects(
      startGatewayYaml(`${base}      - jwt: { keys: [{ secret: "${SECRET}" }], algorithms: [none] }\n`),
      /jwt\.algorithms\[0\]: expected "HS256" or .* got the string "none"/,
    );
    const dir = tempDir();
    writeFileSync(join(dir, 'es.pem'), await exportSPKI(es.publicKey));
    await assert.rejects(
      startGatewayYaml(`${base}      - jwt: { keys: ["file:${join(dir, 'es.pem')}"], algorithms: [RS256] }\n`),
      /jwt\.keys\[0\]: an EC P-256 key, usable with none of the configured algorithms \(RS256\) \[TP_CONFIG_INVALID\]/,
    );
    await assert.rejects(
      startGatewayYaml(`${base}      - jwt: { keys: [{ secret: short }], algorithms: [HS256] }\n`),
      /at least 32 bytes/,
    );
  });

  test('an unreachable JWKS with no key ever fetched answers 503 TP_AUTH_UNAVAILABLE, not 401', async () => {
    const r = await get('/jwks-down', await sign(rsa.privateKey, { alg: 'RS256', kid: 'k1' }));
    assert.equal(r.status, 503);
    assert.equal(json(r).code, 'TP_AUTH_UNAVAILABLE');
  });
});
