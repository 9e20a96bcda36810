// S01 (HAProxy http_transfer_encoding.vtc c1): a request with both Content-Length and Transfer-Encoding: chunked.
// RFC 9112 §6.3 lets Transfer-Encoding win; Turnpike (Node's parser) refuses the message outright, which the
// catalogue also allows, and the leftover byte never becomes a second request upstream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
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
