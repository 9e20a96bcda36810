// U01 (HAProxy truncated_response.vtc): a backend dies mid-response (Content-Length 100000 and 40010 bytes then
// FIN; chunked without the last chunk; an HTTP/2 backend whose stream never ends). The client gets exactly the
// bytes the backend sent, then the connection is cut (HTTP/1.1) or the stream reset (HTTP/2): never a fake
// completion. The response is not cached and not retried (bytes already went to the client), and the access log
// says TP_UPSTREAM_TRUNCATED.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as h2connect, createServer as createH2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import type { ScriptedBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { nextExchangeEnd, rawRequest, requestCount, startRequestScriptedBackend } from '../helpers/upstream-faults.ts';

const SENT = 40010;

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRequestScriptedBackend((socket, { path }) => {
    if (path.endsWith('/length')) {
      socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nCache-Control: max-age=60\r\n\r\n${'x'.repeat(SENT)}`);
    } else if (path.endsWith('/chunked')) {
      socket.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n${'y'.repeat(4096)}\r\n`);
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine');
    }
  });
  // A retry policy that covers resets: the truncation must still not be retried.
  gw = await startAttackGateway({ upstream: backend.url, upstreamExtra: 'retries: { attempts: 2 }' });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const get = (path: string) => rawRequest(gw.http, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);

test('a Content-Length body cut short reaches the client as exactly the bytes sent, then the connection is cut', async () => {
  const ended = nextExchangeEnd(gw.gateway, '/public/length');
  const r = await get('/public/length');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '100000');
  assert.equal(r.body.length, SENT);
  assert.equal(r.closed, true);
  assert.equal((await ended).errorCode, 'TP_UPSTREAM_TRUNCATED');
  assert.equal(requestCount(backend, '/public/length'), 1, 'retried after bytes reached the client');
});

test('a chunked body without its last chunk is never terminated for the client', async () => {
  const ended = nextExchangeEnd(gw.gateway, '/public/chunked');
  const r = await get('/public/chunked');
  assert.equal(r.status, 200);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  assert.ok(r.body.includes('y'.repeat(4096)));
  assert.ok(!r.body.endsWith('0\r\n\r\n'), 'the gateway completed a body the backend never finished');
  assert.equal(r.closed, true);
  assert.equal((await ended).errorCode, 'TP_UPSTREAM_TRUNCATED');
  assert.equal(requestCount(backend, '/public/chunked'), 1);
});

test('a truncated response is not cached: the next request for it goes to the backend again', async () => {
  const first = await get('/cache/length');
  assert.equal(first.body.length, SENT);
  const second = await get('/cache/length');
  assert.notEqual(second.headers['x-cache'], 'HIT');
  assert.equal(second.body.length, SENT);
  assert.equal(requestCount(backend, '/cache/length'), 2);
});

test('over HTTP/2 the truncated stream is reset, not ended, and the session serves the next stream', async () => {
  const session = h2connect(`https://localhost:${gw.https}`, { ca: gw.ca });
  try {
    const req = session.request({ ':path': '/public/length' });
    let received = 0;
    let ended = false;
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => (ended = true));
    req.on('error', () => {});
    req.end();
    await new Promise((resolve) => req.on('close', resolve)); // once() would reject on the stream's error
    assert.equal(received, SENT);
    assert.equal(ended, false, 'END_STREAM on a body the backend never finished');
    assert.notEqual(req.rstCode, 0);
    const ok = session.request({ ':path': '/public/ok' });
    let body = '';
    ok.setEncoding('utf8').on('data', (c: string) => (body += c));
    ok.end();
    await once(ok, 'end');
    assert.equal(body, 'genuine');
  } finally {
    session.destroy();
  }
});

describe('an HTTP/2 backend whose stream never ends', () => {
  test('the client gets the bytes sent, then the connection is cut; not retried', async () => {
    let streams = 0;
    const h2 = createH2Server();
    h2.on('stream', (stream: ServerHttp2Stream) => {
      streams++;
      stream.respond({ ':status': 200, 'content-length': '100000' });
      // No END_STREAM: the backend dies once the bytes are out.
      stream.write('z'.repeat(SENT), () => stream.session!.destroy());
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const port = (h2.address() as AddressInfo).port;
    const h2gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { grpcish: { targets: [{ url: "http://127.0.0.1:${port}" }], http2: true, retries: { attempts: 2 } } }
routes: [{ match: { path: / }, upstream: grpcish }]
`);
    try {
      const ended = nextExchangeEnd(h2gw, '/x');
      const r = await rawRequest(h2gw.port('web'), 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, SENT);
      assert.equal(r.closed, true);
      assert.equal((await ended).errorCode, 'TP_UPSTREAM_TRUNCATED');
      assert.equal(streams, 1);
    } finally {
      await h2gw.stop();
      h2.close();
    }
  });
});
