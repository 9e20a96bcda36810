// A01 (RFC 8725 §2.1, §3.1): unsecured JWTs. The /api route accepts HS256 only (algorithms is pinned in the
// config, "none" can never be one); every `alg: none` spelling, with an empty or a non-empty signature, is 401
// TP_UNAUTHENTICATED and never forwarded. The control: a valid HS256 token for the same claims passes.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { JWT_SECRET, startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: 1000 });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = () => ({ sub: 'user-1', iat: now(), exp: now() + 600 });

async function call(token: string) {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    gw.http,
    `GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  );
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    text,
    arrived: backend.arrivals.length - before,
  };
}

test('alg none, None, NONE, nOnE with an empty or a forged signature are 401 and never forwarded', async () => {
  const hmac = (input: string) => createHmac('sha256', JWT_SECRET).update(input).digest('base64url');
  for (const alg of ['none', 'None', 'NONE', 'nOnE', 'none ', '']) {
    for (const typ of [{ typ: 'JWT' }, {}]) {
      const input = `${b64({ alg, ...typ })}.${b64(claims())}`;
      for (const signature of ['', 'AAAA', hmac(input)]) {
        const r = await call(`${input}.${signature}`);
        assert.equal(r.status, 401, `alg ${JSON.stringify(alg)} sig ${JSON.stringify(signature)}: ${r.text}`);
        assert.match(r.text, /"code":"TP_UNAUTHENTICATED"/);
        assert.equal(r.arrived, 0);
      }
    }
  }
  // Two-part and header-only forms.
  for (const token of [`${b64({ alg: 'none' })}.${b64(claims())}`, `${b64({ alg: 'none' })}..`]) {
    const r = await call(token);
    assert.equal(r.status, 401, token);
    assert.equal(r.arrived, 0);
  }
});

test('the control: the same claims signed HS256 with the secret pass', async () => {
  const r = await call(await gw.token());
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arrived, 1);
});
