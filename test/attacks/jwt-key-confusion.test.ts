// A02 (RFC 8725 §3.1): RS256 -> HS256 key confusion. A route keyed by an RSA public key (algorithms: [RS256]) and
// one by an EC key (ES256): a token signed HS256 with the public key's PEM (or its DER, or the JWK JSON) as the
// HMAC secret is 401 and never forwarded, because the algorithm is pinned per key by the config, never read from
// the token's header (src/plugins/jwt.ts). The control: a real RS256 / ES256 token passes.
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT, importPKCS8 } from 'jose';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml, tempDir } from '../helpers/servers.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

let backend: RecordingBackend;
let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;

before(async () => {
  backend = await startRecordingBackend();
  const dir = tempDir();
  writeFileSync(join(dir, 'rsa.pem'), rsaPem);
  writeFileSync(join(dir, 'ec.pem'), ecPem);
  gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: rsa
    match: { path: /rsa }
    upstream: app
    plugins:
      - jwt:
          algorithms: [RS256]
          keys: ["file:${join(dir, 'rsa.pem')}"]
  - name: ec
    match: { path: /ec }
    upstream: app
    plugins:
      - jwt:
          algorithms: [ES256]
          keys: ["file:${join(dir, 'ec.pem')}"]
`);
});
after(async () => {
  await gateway?.stop();
  await backend.close();
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function hs256(secret: string | Buffer, alg = 'HS256'): string {
  const input = `${b64({ alg, typ: 'JWT' })}.${b64({ sub: 'attacker', iat: now(), exp: now() + 600 })}`;
  const hash = alg === 'HS512' ? 'sha512' : alg === 'HS384' ? 'sha384' : 'sha256';
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

async function call(path: string, token: string) {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    gateway.port('web'),
    `GET ${path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  );
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    text,
    arrived: backend.arrivals.length - before,
  };
}

test('HS256 tokens signed with the RSA public key (PEM, PEM without newline, DER, JWK) are 401 and never forwarded', async () => {
  const der = rsa.publicKey.export({ type: 'spki', format: 'der' });
  const jwk = JSON.stringify(rsa.publicKey.export({ format: 'jwk' }));
  const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  for (const secret of [rsaPem, rsaPem.trim(), der, jwk, pkcs1]) {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const r = await call('/rsa/x', hs256(secret, alg));
      assert.equal(r.status, 401, `${alg}: ${r.text}`);
      assert.match(r.text, /"code":"TP_UNAUTHENTICATED"/);
      assert.equal(r.arrived, 0);
    }
  }
});

test('HS256 tokens signed with the EC public key are 401 and never forwarded', async () => {
  for (const secret of [ecPem, ecPem.trim(), ec.publicKey.export({ type: 'spki', format: 'der' })]) {
    const r = await call('/ec/x', hs256(secret));
    assert.equal(r.status, 401, r.text);
    assert.equal(r.arrived, 0);
  }
});

test('the control: real RS256 and ES256 tokens pass', async () => {
  const sign = async (alg: string, key: typeof rsa.privateKey) =>
    new SignJWT({ sub: 'user-1' })
      .setProtectedHeader({ alg })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(await importPKCS8(key.export({ type: 'pkcs8', format: 'pem' }).toString(), alg));
  assert.equal((await call('/rsa/x', await sign('RS256', rsa.privateKey))).status, 200);
  assert.equal((await call('/ec/x', await sign('ES256', ec.privateKey))).status, 200);
  // And an RS256 token is not accepted on the ES256 route.
  assert.equal((await call('/ec/x', await sign('RS256', rsa.privateKey))).status, 401);
});
