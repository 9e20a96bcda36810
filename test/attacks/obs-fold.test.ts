// S07 (RFC 9112 §5.2): obs-fold, a header line continued on the next line that starts with SP or HTAB. The row
// allows 400, or the fold replaced by SP before forwarding. Turnpike refuses it with 400 + close (Node's strict
// parser does): a folded `Transfer-Encoding` must never reach a backend as a header line of its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused } from '../helpers/h1-verdict.ts';
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

test('an obs-fold hiding Transfer-Encoding is refused with 400 + close and never forwarded', async () => {
  await assertRefused(
    gw.http,
    backend,
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
    'TP_BAD_REQUEST',
  );
  assert.ok(!/\r\n[ \t]/.test(backend.raw.join('')), 'no line upstream starts with SP or HTAB');
});

test('every fold (SP, HTAB, several lines, in Host, in Content-Length, empty first value) is refused', async () => {
  for (const head of [
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n 3\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost: a\r\n .evil\r\n\r\n',
    'GET /public/ HTTP/1.1\r\nHost:\r\n a\r\n\r\n',
    'POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n 0\r\n\r\nhello',
    'GET /public/ HTTP/1.1\r\nHost: a\r\nX-A:\r\n \r\n\r\n',
  ]) {
    await assertRefused(gw.http, backend, head, 400, 'TP_BAD_REQUEST');
  }
  assert.ok(!/\r\n[ \t]/.test(backend.raw.join('')), 'no line upstream starts with SP or HTAB');
});
