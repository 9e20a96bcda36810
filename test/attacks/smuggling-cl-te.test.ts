// S01 (HAProxy http_transfer_encoding.vtc c1): a request with both Content-Length and Transfer-Encoding: chunked.
// RFC 9112 §6.3 lets Transfer-Encoding win; Turnpike (Node's parser) refuses the message outright, which the
// catalogue also allows, and the leftover byte never becomes a second request upstream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused } from '../helpers/h1-verdict.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { tlsExchange } from '../helpers/tls-raw.ts';

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

test('a CL.TE request never reaches the backend as two requests', async () => {
  const attack =
    'POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG' +
    'GET /public/ HTTP/1.1\r\nHost: a\r\n\r\n';
  const { text, closed } = await rawExchange(gw.http, attack);
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.equal(closed, true);
  assert.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1, text);
  assert.equal(backend.arrivals.length, 0);
  assert.ok(!backend.raw.join('').includes('GGET'));
});

test('CL.TE variants (TE first, other letter case, leftover request, TLS) are refused and never reach the backend', async () => {
  const leftover = 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n';
  for (const head of [
    'Content-Length: 6\r\nTransfer-Encoding: chunked',
    'Transfer-Encoding: chunked\r\nContent-Length: 6',
    'content-length: 6\r\ntransfer-encoding: Chunked',
    `Content-Length: ${5 + leftover.length}\r\nTransfer-Encoding: chunked`,
  ]) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\n${head}\r\n\r\n0\r\n\r\n${leftover}`,
      400,
      'TP_BAD_REQUEST',
    );
  }
  const tls = await tlsExchange(
    gw.https,
    gw.ca,
    'POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG' + leftover,
  );
  assert.equal(tls.responses.length, 1, tls.text);
  assert.equal(tls.responses[0]!.status, 400);
  assert.equal(JSON.parse(tls.responses[0]!.body).code, 'TP_BAD_REQUEST', 'over TLS too the answer is a problem');
  assert.equal(tls.closed, true);
  assert.ok(!backend.arrivals.some((a) => a.url.startsWith('/admin') || a.method === 'GGET'));
});
