// compress through the gateway: the encoding negotiated from Accept-Encoding, streamed, and never where it
// would break a response.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { requestBytes, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import type { Gateway } from '../../src/index.ts';

const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(200); // 9 kB, compressible
let backend: Backend;
let gw: Gateway;

before(async () => {
  backend = await startBackend((req, res) => {
    const url = req.url ?? '/';
    if (url === '/small') return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 }).end('small');
    if (url === '/image') return res.writeHead(200, { 'content-type': 'image/png' }).end(TEXT);
    if (url === '/encoded')
      return res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }).end('already');
    if (url === '/no-transform')
      return res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-transform' }).end(TEXT);
    if (url === '/partial')
      return res
        .writeHead(206, { 'content-type': 'text/plain', 'content-range': 'bytes 0-99/9000' })
        .end(TEXT.slice(0, 100));
    if (url === '/stream') {
      // 4 MB in chunks, no content-length: compressed on the fly.
      res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' });
      let i = 0;
      const next = () => {
        while (i < 64) {
          i++;
          if (!res.write(TEXT.repeat(7))) return res.once('drain', next);
        }
        res.end();
      };
      return next();
    }
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(TEXT) })
      .end(TEXT);
  });
  gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { b: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: local
    match: { path: /local }
    respond: { body: "${'x'.repeat(2000)}" }
    plugins: [{ compress: {} }]
  - name: all
    match: { path: / }
    upstream: b
    plugins: [{ compress: { minSize: 1kb } }]
`);
});
after(async () => {
  await gw.stop();
  await backend.close();
});

function get(path: string, acceptEncoding?: string): ReturnType<typeof requestBytes> {
  return requestBytes(gw.port(), path, { headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {} });
}

describe('compress', () => {
  test('picks the encoding by q-value, then the server preference (zstd, br, gzip), and sets Vary', async () => {
    const cases: [string, string | undefined, (b: Buffer) => Buffer][] = [
      ['gzip', 'gzip', gunzipSync],
      ['br;q=0.9, gzip;q=0.5', 'br', brotliDecompressSync],
      ['gzip, br, zstd', 'zstd', zstdDecompressSync],
      ['br;q=0, gzip', 'gzip', gunzipSync],
      ['*', 'zstd', zstdDecompressSync],
    ];
    for (const [accept, expected, decode] of cases) {
      const r = await get('/', accept);
      assert.equal(r.headers['content-encoding'], expected, accept);
      assert.equal(r.headers['content-length'], undefined);
      assert.match(String(r.headers.vary), /Accept-Encoding/);
      assert.equal(decode(r.body).toString(), TEXT);
      assert.ok(r.body.length < TEXT.length / 5);
    }
    const plain = await get('/', 'identity');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString(), TEXT);
    assert.match(String(plain.headers.vary), /Accept-Encoding/);
  });

  test("never compresses small bodies, other types, encoded bodies, no-transform, 206, or the gateway's own replies", async () => {
    // Each passes as it came: status, Content-Encoding (the upstream's own gzip on /encoded) and bytes.
    for (const [path, status, encoding, body] of [
      ['/small', 200, undefined, 'small'],
      ['/image', 200, undefined, TEXT],
      ['/encoded', 200, 'gzip', 'already'],
      ['/no-transform', 200, undefined, TEXT],
      ['/partial', 206, undefined, TEXT.slice(0, 100)],
      ['/local', 200, undefined, 'x'.repeat(2000)],
    ] as const) {
      const r = await get(path, 'gzip');
      assert.deepEqual([r.status, r.headers['content-encoding'], r.body.toString()], [status, encoding, body], path);
    }
  });

  test('streams a large body without a length through the encoder; a strong ETag turns weak', async (t) => {
    const r = await get('/stream', 'gzip');
    const out = gunzipSync(r.body);
    assert.equal(out.length, Buffer.byteLength(TEXT) * 7 * 64);
    assert.equal(r.headers.etag, 'W/"v1"');
    t.diagnostic(`${(out.length / 1e6).toFixed(1)} MB → ${(r.body.length / 1e3).toFixed(0)} kB gzip`);
  });
});
