// H02 (HAProxy h2_desync_attacks.vtc; RFC 9113 §8.2, §8.2.1, §8.2.2): header fields an HTTP/1 backend would read
// as more headers or another framing, sent in HTTP/2 to the h2c and the TLS listener. The row allows a
// RST_STREAM(PROTOCOL_ERROR) or a 400. nghttp2 resets the stream itself for uppercase names and
// connection-specific fields; the fields it silently drops (CR, LF, NUL, names with spaces, surrounding
// whitespace) are caught by Turnpike's frame guard, which ends the connection with GOAWAY(PROTOCOL_ERROR) (a
// stream error treated as a connection error, §5.4.1: the dynamic table may hold the bad field). Either way
// nothing of such a request reaches the backend. `te: trailers`, the one TE allowed, is accepted and goes on as
// exactly that (gRPC backends expect it).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import {
  ERROR,
  FLAG,
  frame,
  FRAME,
  headersFrame,
  RawH2,
  request,
  type Field,
  type H2Target,
} from '../helpers/h2-frames.ts';
import { encodeHuffmanHeaderBlock } from '../helpers/hpack.ts';
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

/** Each case: a name for its path, and the extra fields after the pseudo-headers. */
const MALFORMED: [string, Field[]][] = [
  ['crlf-te', [['foo', 'bar\r\nTransfer-Encoding: chunked']]],
  ['lf', [['foo', 'a\nb']]],
  ['cr', [['foo', 'a\rb']]],
  ['nul', [['foo', 'a\x00b']]],
  ['upper', [['Foo', 'x']]],
  ['space-name', [['foo bar', 'x']]],
  ['colon-name', [['fo:o', 'x']]],
  ['empty-name', [['', 'x']]],
  ['leading-space', [['foo', ' x']]],
  ['trailing-tab', [['foo', 'x\t']]],
  ['transfer-encoding', [['transfer-encoding', 'chunked']]],
  ['connection', [['connection', 'keep-alive']]],
  ['keep-alive', [['keep-alive', 'timeout=5']]],
  ['proxy-connection', [['proxy-connection', 'keep-alive']]],
  ['upgrade', [['upgrade', 'websocket']]],
  ['te-gzip', [['te', 'gzip']]],
  ['host-crlf', [['host', 'a\r\nx-injected: 1']]],
  ['authorization-lf', [['authorization', 'Bearer x\nx-admin: 1']]],
  ['x-api-key-nul', [['x-api-key', 'admin-key-0123456789\x00']]],
];

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });

    for (const [name, fields] of MALFORMED) {
      test(`a request with ${name} is refused with PROTOCOL_ERROR and never reaches the backend`, async () => {
        const path = `/public/${side}-${name}`;
        const c = await RawH2.open(target());
        c.send(headersFrame(1, request(path, 'GET', fields), { endStream: true }));
        const o = await c.outcome(1);
        c.close();
        if (o.kind === 'response') assert.equal(o.status, 400, `${name} answered ${o.status}`);
        else if (o.kind === 'reset' || o.kind === 'goaway') assert.equal(o.code, ERROR.PROTOCOL_ERROR);
        else assert.fail(`${name}: connection closed without RST_STREAM or GOAWAY`);
        assert.equal(backend.arrivals.filter((a) => a.url === path).length, 0, `${name} was forwarded`);
        const raw = backend.raw.join('');
        assert.ok(!raw.includes(path), `${name} reached the backend`);
        assert.ok(
          !/\r\n(Transfer-Encoding|x-injected|x-admin)/i.test(raw),
          'an injected header line reached the backend',
        );
      });
    }

    test('Huffman-coded CR LF in a value (and an ordinary Huffman-coded request) are told apart', async () => {
      const c = await RawH2.open(target());
      const ok = `/public/${side}-huffman-ok`;
      c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, encodeHuffmanHeaderBlock(request(ok))));
      const first = await c.outcome(1);
      assert.equal(first.kind === 'response' && first.status, 200, JSON.stringify(first));
      const bad = `/public/${side}-huffman-crlf`;
      const block = encodeHuffmanHeaderBlock(request(bad, 'GET', [['foo', 'a\r\nx-injected: 1']]));
      c.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, block));
      const o = await c.outcome(3);
      c.close();
      assert.ok((o.kind === 'goaway' || o.kind === 'reset') && o.code === ERROR.PROTOCOL_ERROR, JSON.stringify(o));
      assert.equal(backend.arrivals.filter((a) => a.url === bad).length, 0);
    });

    test('te: trailers is accepted and reaches the backend as te: trailers alone', async () => {
      const path = `/public/${side}-te-trailers`;
      const c = await RawH2.open(target());
      c.send(headersFrame(1, request(path, 'GET', [['te', 'trailers']]), { endStream: true }));
      const o = await c.outcome(1);
      c.close();
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      const a = backend.arrivals.find((x) => x.url === path);
      assert.equal(a?.headers.te, 'trailers');
    });

    test('a malformed field in a second request ends the connection; the first request on it was served', async () => {
      const c = await RawH2.open(target());
      c.send(headersFrame(1, request(`/public/${side}-first`), { endStream: true }));
      assert.equal((await c.outcome(1)).kind, 'response');
      c.send(headersFrame(3, request(`/public/${side}-second`, 'GET', [['foo', 'a\r\nb']]), { endStream: true }));
      const o = await c.outcome(3);
      c.close();
      assert.ok(o.kind === 'goaway' || o.kind === 'reset', JSON.stringify(o));
      assert.equal(backend.arrivals.filter((a) => a.url === `/public/${side}-second`).length, 0);
    });

    test('an ordinary request with many well-formed fields (Huffman-free literals) still passes', async () => {
      const path = `/public/${side}-ordinary`;
      const fields: Field[] = [
        ['accept', 'text/html, application/json;q=0.9'],
        ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64)'],
        ['x-empty', ''],
        ['cookie', 'a=1; b=2'],
      ];
      const c = await RawH2.open(target());
      c.send(headersFrame(1, request(path, 'GET', fields), { endStream: true }));
      const o = await c.outcome(1);
      c.close();
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      assert.equal(
        backend.arrivals.find((a) => a.url === path)?.headers['user-agent'],
        'Mozilla/5.0 (X11; Linux x86_64)',
      );
    });
  });
}
