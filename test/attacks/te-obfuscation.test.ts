// S03 (HAProxy http_transfer_encoding.vtc c6-c10; RFC 9112 §6.1, §5.1): obfuscated Transfer-Encoding (TE.TE), with
// and without Content-Length. The row allows 400 or 501 for an unknown coding; Turnpike answers 400 TP_BAD_REQUEST
// for every Transfer-Encoding other than a lone `chunked` (letter case aside) in HTTP/1.1: Node's parser already
// answers 400 for most of them, and a gateway that re-frames the body upstream could only pass `gzip, chunked` on
// with the gzip coding undone by nobody. Node lets `,chunked`, `gzip, chunked` and TE in HTTP/1.0 through; refuseHead
// (src/proxy/request-head.ts) refuses them.
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

const OBFUSCATED = [
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding : chunked',
  'Transfer-Encoding:\x0bchunked',
  'Transfer-Encoding: chunked\x00',
  'Transfer-Encoding: ,chunked',
  'Transfer-Encoding: chunked,',
  'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity',
  'Transfer-Encoding: chunked, chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding: gzip',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: identity',
  'Transfer-Encoding: identity, chunked',
  'Transfer-Encoding: chunked;q=1',
  'Transfer-Encoding: "chunked"',
  'Transfer-Encoding: chunked\t',
  'Transfer-Encoding: ch unked',
  'Transfer-Encoding: chunk',
  'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
  'Transfer-Encoding: \r\nTransfer-Encoding: chunked',
  'Transfer-Encoding:chunked\r\nX: \x0b',
  'Transfer_Encoding: chunked\r\nTransfer-Encoding: gzip',
];

test('every obfuscated Transfer-Encoding is refused with 400 + close and never forwarded', async () => {
  for (const te of OBFUSCATED) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\n${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('every obfuscated Transfer-Encoding beside a Content-Length is refused with 400 + close', async () => {
  for (const te of OBFUSCATED) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n${te}\r\n\r\nhello`,
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('a leading space on the first header line (TE hidden in the request line) is refused', async () => {
  await assertRefused(
    gw.http,
    backend,
    'POST /public/ HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    400,
    'TP_BAD_REQUEST',
  );
});

test('Transfer-Encoding in an HTTP/1.0 request is refused (RFC 9112 §6.1: faulty framing)', async () => {
  await assertRefused(
    gw.http,
    backend,
    'POST /public/ HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    400,
    'TP_BAD_REQUEST',
  );
});

test('a lone chunked, in any letter case and after OWS, is de-chunked and reaches the backend once with its body', async () => {
  for (const [i, te] of ['chunked', 'CHUNKED', 'Chunked', '\tchunked'].entries()) {
    // The case's number names it: an escaped tab in a path is refused on its own (TP_BAD_PATH).
    const url = `/public/te-${i}`;
    const r = await exchange(
      gw.http,
      `POST ${url} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    assert.equal(r.responses[0]?.status, 200, r.text);
    const got = backend.arrivals.filter((a) => a.url === url);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.body.toString(), 'hello');
    assert.equal(got[0]!.complete, true);
    // Re-framed upstream: one framing header, never the client's coding list.
    const framing = got[0]!.rawHeaders.filter(
      (_, i, h) => i % 2 === 0 && /^(content-length|transfer-encoding)$/i.test(h[i]!),
    );
    assert.equal(framing.length, 1, JSON.stringify(got[0]!.rawHeaders));
  }
});
