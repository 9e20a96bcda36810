// S06 (http-garden HAProxy bugs 2-3; RFC 9112 §2.2): bare LF, bare CR and NUL in the head. The row allows either
// 400 for all, or bare-LF lines accepted and re-serialised with CRLF. Turnpike refuses them all with 400 + close
// (Node's strict parser does: a line ending other proxies read differently is the desync), and CR or NUL inside a
// value is refused too; nothing of such a request is forwarded. Bytes a value may carry (obs-text) go upstream as sent.
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

test('bare LF line endings, anywhere in the head, are refused with 400 + close', async () => {
  for (const head of [
    'GET /public/ HTTP/1.1\nHost: a\n\n',
    'GET /public/ HTTP/1.1\nHost: a\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\n\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n',
  ]) {
    await assertRefused(gw.http, backend, head, 400, 'TP_BAD_REQUEST');
  }
});

test('a bare LF smuggling a second header line is refused, not split into two headers', async () => {
  await assertRefused(
    gw.http,
    backend,
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
    'TP_BAD_REQUEST',
  );
});

test('a bare CR in a value or as a line ending is refused with 400 + close', async () => {
  for (const head of [
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: va\rlue\r\n\r\n',
    'GET /public/ HTTP/1.1\rHost: a\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\n\r\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: 1\r\r\n\r\n',
  ]) {
    await assertRefused(gw.http, backend, head, 400, 'TP_BAD_REQUEST');
  }
});

test('NUL and other control bytes in a value, name or target are refused with 400 + close', async () => {
  for (const head of [
    'GET /public/ HTTP/1.1\r\nHost: a\x00.evil\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX\x00Y: 1\r\n\r\n',
    'GET /pub\x00lic/ HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n',
  ]) {
    await assertRefused(gw.http, backend, head, 400, 'TP_BAD_REQUEST');
  }
});

test('chunk lines ended by a bare LF are refused and the upstream request never completes', async () => {
  for (const body of ['5\nhello\r\n0\r\n\r\n', '5\r\nhello\n0\r\n\r\n', '5\r\nhello\r\n0\n\r\n']) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
      400,
      'TP_BAD_REQUEST',
      { midBody: true },
    );
  }
});

test('obs-text bytes in a value (UTF-8, 0xFF) reach the backend byte for byte', async () => {
  const r = await exchange(
    gw.http,
    Buffer.from(
      'GET /public/obs HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Name: Jos\xc3\xa9 \xff\r\n\r\n',
      'latin1',
    ),
  );
  assert.equal(r.responses[0]?.status, 200, r.text);
  const conn = backend.arrivals.find((a) => a.url === '/public/obs')!.conn;
  assert.match(backend.raw[conn]!, /\r\nx-name: Jos\xc3\xa9 \xff\r\n/i);
});
