// S09 (HAProxy h1_request_target_validation.vtc): request-line validation. The row allows 400, or 505 for a bad
// version; Turnpike answers 400 TP_BAD_REQUEST for every malformed line and version (one answer for what Node's
// parser refuses and what refuseHead adds: HTTP/2.0 and HTTP/0.9 read by llhttp, a fragment), and 405
// TP_METHOD_NOT_ALLOWED for CONNECT (Node closed it unanswered): a reverse proxy opens no tunnels, and `CONNECT /` is
// refused by method before its target is looked at. An HTTP/0.9 line (`GET /`, no version) is answered 400 at once by
// the request-line gate (src/runtime/request-line-gate.ts): llhttp would wait for headers until the header timeout.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { tlsExchange } from '../helpers/tls-raw.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  // A header timeout the HTTP/0.9 test would notice: an answer after it is not "at once".
  gw = await startAttackGateway({ upstream: backend.url, limits: 'headerTimeout: 30s' });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

test('a target that is not a path (*, a bare word, authority-form, other schemes, userinfo) is refused with 400', async () => {
  for (const target of [
    '*',
    'admin',
    'host:80',
    'a.example:443',
    'ftp://good.example/public/',
    'http://a@good.example/public/',
    'http://a:b@good.example/public/',
    'http:///public/',
    'http:/public/',
    'http:\\\\evil.example\\public/',
    'http://a\\@evil.example/public/',
  ]) {
    const method = target === '*' ? 'OPTIONS' : 'GET';
    await assertRefused(gw.http, backend, `${method} ${target} HTTP/1.1\r\nHost: a\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
  await assertRefused(gw.http, backend, 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'TP_BAD_REQUEST');
});

test('CONNECT, to / or to an authority, is answered 405 + close instead of a silent close', async () => {
  for (const line of ['CONNECT / HTTP/1.1', 'CONNECT 127.0.0.1:22 HTTP/1.1', 'CONNECT good.example:443 HTTP/1.1']) {
    await assertRefused(gw.http, backend, `${line}\r\nHost: a\r\n\r\n`, 405, 'TP_METHOD_NOT_ALLOWED');
  }
  // Bytes sent after the CONNECT head are never tunnelled nor parsed as a request.
  await assertRefused(
    gw.http,
    backend,
    'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n',
    405,
    'TP_METHOD_NOT_ALLOWED',
  );
});

test('CONNECT over TLS (HTTP/1.1) is answered 405 with a problem', async () => {
  const r = await tlsExchange(gw.https, gw.ca, 'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0]!.status, 405);
  assert.equal(JSON.parse(r.responses[0]!.body).code, 'TP_METHOD_NOT_ALLOWED');
  assert.equal(r.closed, true);
});

test('an HTTP/2 CONNECT (h2c and TLS) is answered 405 with a problem', async () => {
  for (const origin of [`http://127.0.0.1:${gw.http}`, `https://localhost:${gw.https}`]) {
    const session = http2.connect(origin, { ca: gw.ca });
    const req = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:22' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const [headers] = await Promise.all([
      new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('response', resolve)),
      new Promise((resolve) => req.once('end', resolve)),
    ]);
    session.destroy();
    assert.equal(headers[':status'], 405, origin);
    assert.equal(headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(Buffer.concat(chunks).toString()).code, 'TP_METHOD_NOT_ALLOWED');
  }
});

test('versions other than HTTP/1.0 and HTTP/1.1 are refused with 400 + close', async () => {
  for (const version of [
    'HTTP/1.32',
    'HTTP/4294967295.255',
    'HTTP/2.0',
    'HTTP/3.0',
    'HTTP/1.2',
    'HTTP/0.9',
    'HTTP/0.1',
    'HTTP/1',
    'HTTP/1.1.1',
    'http/1.1',
    'HTTP/1.01',
    'HTTPS/1.1',
    'HTTP/ 1.1',
  ]) {
    await assertRefused(gw.http, backend, `GET /public/ ${version}\r\nHost: a\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
});

test('a method that is not a token llhttp knows (G=":<>(e),[T];?", lower case, unknown) is refused with 400', async () => {
  for (const method of ['G=":<>(e),[T];?"', 'get', 'FOO', 'GE T', 'GET\t', 'PRI']) {
    await assertRefused(gw.http, backend, `${method} /public/ HTTP/1.1\r\nHost: a\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
});

test('an HTTP/0.9 request line is answered 400 at once, not 408 at the header timeout', async () => {
  for (const line of ['GET /public/\r\n', 'GET /\r\n', 'GET /public/\n', 'POST /public/\r\n', 'GET /admin/x\r\n']) {
    await assertRefused(gw.http, backend, line, 400, 'TP_BAD_REQUEST');
  }
});

test('HTTP/0.9 followed by headers (which llhttp reads as a 0.9 request) is refused with 400', async () => {
  for (const head of ['GET /public/\r\nHost: a\r\n\r\n', 'POST /public/\r\nHost: a\r\nContent-Length: 0\r\n\r\n']) {
    await assertRefused(gw.http, backend, head, 400, 'TP_BAD_REQUEST');
  }
});

test('whitespace or control bytes inside the target are refused with 400', async () => {
  for (const target of [
    '/pub lic/',
    '/pub\tlic/',
    '/pub\x7flic/',
    '/pub\xfflic/',
    '/public/\x00',
    '/public/ HTTP/1.1 x',
  ]) {
    await assertRefused(
      gw.http,
      backend,
      Buffer.from(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`, 'latin1'),
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('a fragment in the target is refused: a backend cutting it would read another path than was routed', async () => {
  for (const target of ['/public/#frag', '/admin#/../public/', '/public/?a=1#x', 'http://a/public/#x']) {
    await assertRefused(gw.http, backend, `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`, 400, 'TP_BAD_REQUEST');
  }
});

test('a plain request line, with or without empty lines before it, is forwarded with one SP between its parts', async () => {
  for (const [i, line] of [
    'GET /public/rl-0 HTTP/1.1',
    '\r\nGET /public/rl-1 HTTP/1.1',
    'GET  /public/rl-2 HTTP/1.1',
  ].entries()) {
    const r = await exchange(gw.http, `${line}\r\nHost: a\r\nConnection: close\r\n\r\n`);
    assert.equal(r.responses[0]?.status, 200, r.text);
    const conn = backend.arrivals.find((a) => a.url === `/public/rl-${i}`)!.conn;
    assert.ok(backend.raw[conn]!.includes(`GET /public/rl-${i} HTTP/1.1\r\n`));
  }
});

test('a request line that never ends is answered 408 at the header timeout, not held open', async () => {
  const short = await startAttackGateway({ upstream: backend.url, limits: 'headerTimeout: 1s' });
  try {
    const socket = connect(short.http, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.write('GET /public/aaaa');
    await new Promise((resolve) => socket.once('close', resolve));
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /"code":"TP_REQUEST_TIMEOUT"/);
  } finally {
    await short.stop();
  }
});
