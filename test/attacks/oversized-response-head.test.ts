// X05, the backend part (nginx "upstream sent too big header" 502, HAProxy 502, Envoy max_response_headers_kb): a
// backend response head of 64 KiB is a 502. The limit is the upstream's `maxResponseHeaderSize` (default 32kb),
// counted as Envoy counts it: the bytes of the header names and values (not the status line, colons or CRLFs).
// Tested at the limit (relayed) and one byte past it (502), with the default and a configured value, from an
// HTTP/1.1 and an HTTP/2 backend (undici bounds only the former; the forwarder measures the latter).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/index.ts';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { problemCode, rawRequest } from '../helpers/upstream-faults.ts';

/** A response head whose names and values add up to exactly `bytes` (one X-Big header fills it up). */
function headOf(bytes: number, headerCount = 1): string {
  let head = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n';
  let left = bytes - 'content-length'.length - 1; // Content-Length: 2
  const share = Math.floor(bytes / headerCount);
  for (let i = 1; i < headerCount; i++) {
    const name = `x-h${i}`;
    const value = 'v'.repeat(share - name.length);
    head += `${name}: ${value}\r\n`;
    left -= name.length + value.length;
  }
  const name = 'x-big';
  head += `${name}: ${'b'.repeat(left - name.length)}\r\n`;
  return `${head}\r\nok`;
}

let backend: ScriptedBackend;

before(async () => {
  // GET /public/<bytes>[/<headers>] answers a head of that size.
  backend = await startScriptedBackend((socket: Socket, conn) => {
    let offset = 0;
    socket.on('data', () => {
      for (;;) {
        const text = backend.raw[conn]!.slice(offset);
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        offset += end + 4;
        const [, bytes, count] = /^GET \/\w+\/(\d+)(?:\/(\d+))? /.exec(text)!;
        socket.write(headOf(Number(bytes), Number(count ?? 1)));
      }
    });
  });
});
after(() => backend.close());

const get = (port: number, path: string) =>
  rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);

describe('with the default maxResponseHeaderSize (32kb)', () => {
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => (gw = await startAttackGateway({ upstream: backend.url })));
  after(() => gw.stop());

  test('a backend response head of 64 KiB is a 502, never relayed', async () => {
    const r = await get(gw.http, `/public/${64 * 1024}`);
    assert.equal(r.status, 502, r.text.slice(0, 300));
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
    assert.ok(!r.text.includes('bbbb'));
    assert.ok(!r.text.includes(String(backend.port)), 'the backend address leaked');
  });

  test('a head of exactly 32 KiB of names and values is relayed whole', async () => {
    const r = await get(gw.http, `/public/${32 * 1024}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.headers['x-big']!.length, 32 * 1024 - 'content-length'.length - 1 - 'x-big'.length);
    assert.ok(!r.text.includes(String(backend.port)));
    assert.equal(r.body, 'ok');
  });

  test('a head of 32 KiB + 1 is a 502', async () => {
    const r = await get(gw.http, `/public/${32 * 1024 + 1}`);
    assert.equal(r.status, 502, r.text.slice(0, 300));
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
  });

  test('the limit counts the whole head: 400 small headers adding up to 32 KiB + 1 are a 502 too', async () => {
    const r = await get(gw.http, `/public/${32 * 1024 + 1}/400`);
    assert.equal(r.status, 502, r.text.slice(0, 300));
    const ok = await get(gw.http, `/public/${32 * 1024}/400`);
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
  });

  test('over h2 (TLS, ALPN h2) the oversized head is a 502 too', async () => {
    const { connect } = await import('node:http2');
    const session = connect(`https://localhost:${gw.https}`, { ca: gw.ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': `/public/${64 * 1024}` });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.resume();
        req.on('end', () => resolve(status));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 502);
    } finally {
      session.destroy();
    }
  });
});

describe('with maxResponseHeaderSize: 8kb', () => {
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(
    async () => (gw = await startAttackGateway({ upstream: backend.url, upstreamExtra: 'maxResponseHeaderSize: 8kb' })),
  );
  after(() => gw.stop());

  test('a head of exactly 8 KiB is relayed and 8 KiB + 1 is a 502', async () => {
    assert.equal((await get(gw.http, `/public/${8 * 1024}`)).status, 200);
    const r = await get(gw.http, `/public/${8 * 1024 + 1}`);
    assert.equal(r.status, 502);
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
  });
});

describe('an HTTP/2 backend (http2: true), default limit', () => {
  let h2: Http2Server;
  let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
  before(async () => {
    h2 = createH2Server({ maxSendHeaderBlockLength: 1 << 20 }); // Node refuses to send heads over 64 KiB by default
    // /<bytes>: a head whose names and values add up to that (date: x, then x-big fills it up).
    h2.on('stream', (stream, headers) => {
      const bytes = Number(String(headers[':path']).slice(1));
      stream.respond({ ':status': 200, date: 'x', 'x-big': 'b'.repeat(bytes - 'date'.length - 1 - 'x-big'.length) });
      stream.end('ok');
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:${(h2.address() as AddressInfo).port}" }], http2: true } }
routes: [{ match: { path: / }, upstream: app }]
`);
  });
  after(async () => {
    await gw.stop();
    h2.close();
  });

  test('a head of exactly 32 KiB is relayed; 32 KiB + 1 and 64 KiB are a 502', async () => {
    assert.equal((await get(gw.port('web'), `/${32 * 1024}`)).status, 200);
    for (const bytes of [32 * 1024 + 1, 64 * 1024]) {
      const r = await get(gw.port('web'), `/${bytes}`);
      assert.equal(r.status, 502, `${bytes}`);
      assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
    }
  });
});

test('maxResponseHeaderSize is validated: from 1kb to 1mb', () => {
  const config = (v: string) => `
listeners: [{ name: web, protocol: http, port: 0 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:1" }], maxResponseHeaderSize: ${v} } }
routes: [{ match: { path: / }, upstream: app }]
`;
  assert.equal(parseConfig(config('32kb')).upstreams.app!.maxResponseHeaderSize, 32 * 1024);
  const problem = (v: string): string => {
    try {
      parseConfig(config(v));
    } catch (err) {
      return (err as Error & { problems: { message: string }[] }).problems.map((p) => p.message).join('\n');
    }
    return assert.fail(`${v} was accepted`);
  };
  assert.equal(problem('1023b'), 'expected a size from 1kb to 1mb');
  assert.equal(problem('1025kb'), 'expected a size from 1kb to 1mb');
  assert.match(problem('lots'), /^expected a size such as 512b, 16kb, 10mb or 2gb, got "lots"/);
  assert.equal(parseConfig(config('1kb')).upstreams.app!.maxResponseHeaderSize, 1024);
  assert.equal(parseConfig(config('1mb')).upstreams.app!.maxResponseHeaderSize, 1024 * 1024);
  const defaults = parseConfig(config('32kb').replace(', maxResponseHeaderSize: 32kb', ''));
  assert.equal(defaults.upstreams.app!.maxResponseHeaderSize, 32 * 1024);
});
