// X05 (nginx 414/400, Envoy 431, HAProxy 400/502), the request side over HTTP/1.1: one header of 16 KiB + 1, 33 KiB
// in all, 101 and 129 header fields, a request line of 8 KiB + 1 and of 64 KiB. Each limit is tested at the limit
// (forwarded) and one past it (refused + close, before the backend is contacted):
//  - limits.maxHeaderSize (16kb): bytes of the target, field names and values (not the method, version, colons or
//    CRLFs: what Node's parser counts), inclusive; 431 TP_HEADERS_TOO_LARGE past it.
//  - limits.maxHeaderCount (100, as Envoy and HAProxy): header fields, Host included; 431 TP_HEADERS_TOO_LARGE.
//  - limits.maxUriLength (8kb, NGINX's large_client_header_buffers line: Envoy and HAProxy only bound the whole
//    head): bytes of the request target; 414 TP_URI_TOO_LONG. A first request line longer than that is refused by
//    the request-line gate as soon as it is that long, never buffered to the 16 KiB head limit.
// Both new limits are global and per listener. The h2 header list and the backend's response head are other rows.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { tlsExchange } from '../helpers/tls-raw.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  // The backend reads larger heads than the gateway: what the gateway lets through is recorded, not refused there.
  backend = await startRecordingBackend(undefined, { maxHeaderSize: 1 << 20 });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** A request whose counted head (target + names + values) is exactly `counted` bytes, padded in one header. */
function headOf(counted: number, url = '/public/size'): string {
  const pad = counted - url.length - 'Host'.length - 'a'.length - 'X-Pad'.length;
  return `GET ${url} HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(pad)}\r\nConnection: close\r\n\r\n`;
}

/** A request with `count` header fields in all (Host included). */
function withFields(count: number, url: string): string {
  let head = `GET ${url} HTTP/1.1\r\nHost: a\r\n`;
  for (let i = 1; i < count; i++) head += `X-F${i}: ${i}\r\n`;
  return `${head}\r\n`;
}

async function forwarded(port: number, payload: string, url: string): Promise<void> {
  const r = await exchange(port, payload);
  assert.equal(r.responses[0]?.status, 200, r.text.slice(0, 300));
  assert.ok(backend.arrivals.some((a) => a.url === url));
}

test('a head of exactly maxHeaderSize (16 KiB counted) is forwarded; one byte more is refused 431 + close', async () => {
  // Connection: close counts too: 10 + 5 bytes.
  await forwarded(gw.http, headOf(16384 - 15), '/public/size');
  await assertRefused(gw.http, backend, headOf(16384 - 15 + 1), 431, 'TP_HEADERS_TOO_LARGE');
});

test('a single header of 16 KiB + 1, and 33 KiB over many headers, are refused 431 + close', async () => {
  await assertRefused(gw.http, backend, `GET /public/ HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(16385)}\r\n\r\n`, 431);
  let head = 'GET /public/ HTTP/1.1\r\nHost: a\r\n';
  for (let i = 0; i < 33; i++) head += `X-Big-${i}: ${'v'.repeat(1010)}\r\n`;
  await assertRefused(gw.http, backend, `${head}\r\n`, 431, 'TP_HEADERS_TOO_LARGE');
});

test('100 header fields are forwarded; 101 and 129 are refused 431 + close', async () => {
  await forwarded(
    gw.http,
    withFields(100, '/public/fields-100')
      .replace('Host: a\r\n', 'Host: a\r\nConnection: close\r\n')
      .replace('X-F1: 1\r\n', ''),
    '/public/fields-100',
  );
  const got = backend.arrivals.find((a) => a.url === '/public/fields-100')!;
  assert.ok(got.rawHeaders.includes('X-F99') || got.rawHeaders.includes('x-f99'), 'the 100th field went upstream');
  for (const count of [101, 129, 2001]) {
    await assertRefused(gw.http, backend, withFields(count, '/public/'), 431, 'TP_HEADERS_TOO_LARGE');
  }
});

test('a target of 8 KiB is forwarded; 8 KiB + 1 and 64 KiB are refused 414 + close', async () => {
  const at = `/public/${'u'.repeat(8192 - 8)}`;
  await forwarded(gw.http, `GET ${at} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, at);
  await assertRefused(gw.http, backend, `GET ${at}u HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 'TP_URI_TOO_LONG');
  await assertRefused(gw.http, backend, `GET /public/?q=${'u'.repeat(8190)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414);
  await assertRefused(gw.http, backend, `GET /public/${'u'.repeat(64 * 1024)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414);
});

test('a 64 KiB request line is answered 414 as soon as its target passes the limit, before the line ends', async () => {
  // No line end ever comes: only the gate's 414 can answer before the header timeout.
  const r = await exchange(gw.http, `GET /public/${'u'.repeat(64 * 1024)}`);
  assert.equal(r.responses[0]?.status, 414, r.text.slice(0, 200));
  assert.equal(r.closed, true);
});

test('on a kept-alive connection, a second request with a target of 8 KiB + 1 is refused 414', async () => {
  const r = await exchange(
    gw.http,
    `GET /public/ka-1 HTTP/1.1\r\nHost: a\r\n\r\nGET /public/${'u'.repeat(8192 - 7)} HTTP/1.1\r\nHost: a\r\n\r\n`,
  );
  assert.deepEqual(
    r.responses.map((x) => x.status),
    [200, 414],
  );
  assert.equal(r.closed, true);
});

test('over TLS (HTTP/1.1) the same limits hold: 101 fields 431, a target of 8 KiB + 1 414', async () => {
  const fields = await tlsExchange(gw.https, gw.ca, withFields(101, '/public/'));
  assert.equal(fields.responses[0]?.status, 431, fields.text.slice(0, 200));
  const uri = await tlsExchange(gw.https, gw.ca, `GET /public/${'u'.repeat(8192 - 7)} HTTP/1.1\r\nHost: a\r\n\r\n`);
  assert.equal(uri.responses[0]?.status, 414, uri.text.slice(0, 200));
  const size = await tlsExchange(gw.https, gw.ca, headOf(16384 - 15 + 1));
  assert.equal(size.responses[0]?.status, 431);
  assert.equal(JSON.parse(size.responses[0]!.body).code, 'TP_HEADERS_TOO_LARGE');
});

test('maxHeaderCount and maxUriLength apply globally and per listener, at the limit and one past it', async () => {
  const gateway = await startGatewayYaml(`
listeners:
  - { name: global, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: strict, protocol: http, address: 127.0.0.1, port: 0, limits: { maxHeaderCount: 5, maxUriLength: 64b } }
limits: { maxHeaderCount: 10, maxUriLength: 128b }
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app }]
`);
  try {
    for (const [name, count, uri] of [
      ['global', 10, 128],
      ['strict', 5, 64],
    ] as const) {
      const port = gateway.port(name);
      const url = `/${name}-at-`;
      await forwarded(port, withFields(count, `${url}fields`).replace('X-F1: 1', 'Connection: close'), `${url}fields`);
      await assertRefused(port, backend, withFields(count + 1, `/${name}`), 431, 'TP_HEADERS_TOO_LARGE');
      const target = `/${name}-${'u'.repeat(uri - name.length - 2)}`;
      assert.equal(target.length, uri);
      await forwarded(port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, target);
      await assertRefused(port, backend, `GET ${target}u HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 'TP_URI_TOO_LONG');
    }
  } finally {
    await gateway.stop();
  }
});

test('invalid limits are refused by the config loader with exact messages', () => {
  const problems = (limits: string) => {
    try {
      parseConfigText(
        `listeners: [{ name: web, protocol: http, port: 0, limits: ${limits} }]\nlimits: ${limits}\n`,
        'c.yaml',
        {
          plugins: PLUGIN_SCHEMAS,
          env: {},
        },
      );
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };
  assert.deepEqual(problems('{ maxHeaderCount: 0, maxUriLength: 8b }'), [
    'listeners[0].limits.maxHeaderCount: expected at least 1, got the number 0',
    'listeners[0].limits.maxUriLength: expected at least 16b',
    'limits.maxHeaderCount: expected at least 1, got the number 0',
    'limits.maxUriLength: expected at least 16b',
  ]);
  assert.deepEqual(problems('{ maxHeaderCount: 100, maxUriLength: 8kb }'), []);
});

test('memory stays flat after many oversized requests', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const n = scale(1000, 10_000);
  const payloads = [
    `GET /public/ HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(16385)}\r\n\r\n`,
    withFields(129, '/public/'),
    `GET /public/${'u'.repeat(64 * 1024)} HTTP/1.1\r\nHost: a\r\n\r\n`,
  ];
  const round = async (count: number) => {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => exchange(gw.http, payloads[(i + j) % 3]!)));
    }
  };
  await round(150); // warm up: pools, code, buffers
  gc();
  const before = process.memoryUsage();
  await round(n);
  gc();
  const after = process.memoryUsage();
  const heapGrowth = (after.heapUsed - before.heapUsed) / 1024 / 1024;
  const rssGrowth = (after.rss - before.rss) / 1024 / 1024;
  console.log(`# ${n} oversized requests: heap ${heapGrowth.toFixed(1)} MiB, rss ${rssGrowth.toFixed(1)} MiB`);
  assert.ok(heapGrowth < 5, `heap grew ${heapGrowth.toFixed(1)} MiB`);
  assert.ok(rssGrowth < 40, `rss grew ${rssGrowth.toFixed(1)} MiB`);
});
