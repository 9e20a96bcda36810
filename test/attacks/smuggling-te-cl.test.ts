// S02 (PortSwigger desync, HAProxy): TE.CL — Content-Length: 4 beside Transfer-Encoding: chunked, the chunk carrying
// a second request. RFC 9112 §6.3 lets Transfer-Encoding win; Turnpike (Node's parser) refuses any request with both,
// which the catalogue also allows: 400 + close, and the backend never sees the request nor the one smuggled in it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const smuggled = 'GPOST / HTTP/1.1\r\nContent-Type: x\r\nContent-Length: 15\r\n\r\nx=1';

test('a TE.CL request is refused with 400 and nothing reaches the backend', async () => {
  await assertRefused(
    gw.http,
    backend,
    `POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `5c\r\n${smuggled}\r\n0\r\n\r\n`,
    400,
    'TP_BAD_REQUEST',
  );
  assert.ok(!backend.raw.join('').includes('GPOST'));
});

test('TE.CL with Transfer-Encoding first, or in other letter case, is refused the same way', async () => {
  for (const head of [
    'Transfer-Encoding: chunked\r\nContent-Length: 4',
    'transfer-encoding: chunked\r\ncontent-length: 4',
    'Content-Length: 4\r\nTransfer-Encoding: CHUNKED',
    'Content-Length: 0\r\nTransfer-Encoding: chunked',
  ]) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\n${head}\r\n\r\n5c\r\n${smuggled}\r\n0\r\n\r\n`,
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('a smuggled request for /admin behind TE.CL never reaches the backend unauthenticated', async () => {
  const inner = 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n';
  await assertRefused(
    gw.http,
    backend,
    `POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`,
    400,
  );
  assert.ok(!backend.arrivals.some((a) => a.url.startsWith('/admin')));
});

test('the chunked body alone (no Content-Length) reaches the backend as exactly one request with the whole body', async () => {
  const r = await exchange(
    gw.http,
    `POST /public/te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
      `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
  );
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0]!.status, 200);
  const got = backend.arrivals.filter((a) => a.url === '/public/te');
  assert.equal(got.length, 1);
  assert.equal(got[0]!.body.toString('latin1'), smuggled);
  assert.equal(got[0]!.complete, true);
  assert.ok(!backend.arrivals.some((a) => a.method === 'GPOST'));
});
