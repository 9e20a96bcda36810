// W02 (BishopFox h2c smuggling): `Upgrade: h2c` on HTTP/1.1, then HTTP/2 frames for /admin on the same socket.
// Turnpike tunnels only WebSocket (src/proxy/upgrade-tunnel.ts tunnelsUpgrade): h2c is the row's first behaviour,
// "stripped": the request is served as plain HTTP/1.1 by its own route, Upgrade, HTTP2-Settings and their Connection
// tokens never reach the backend, and the frames that follow are read as HTTP/1.1 (the preface `PRI * HTTP/2.0` is
// no HTTP/1.1 request: never answered nor forwarded, the connection closed at the header timeout), so no HTTP/2
// stream ever bypasses the route of /admin. A route may list other protocols in `upgrades: [...]`: only those are
// tunnelled, only on that route, and only when the backend's 101 names one of them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import {
  startRecordingBackend,
  startScriptedBackend,
  type RecordingBackend,
  type ScriptedBackend,
} from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  // Short timeouts so a connection the gateway holds ends by itself: the test waits on its close.
  gw = await startAttackGateway({ upstream: backend.url, limits: 'headerTimeout: 1s\nkeepAliveTimeout: 1s' });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A SETTINGS frame (empty) and a HEADERS frame for GET /admin/secret (HPACK literals, no huffman). */
function h2AdminFrames(): Buffer {
  const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
  const literal = (name: string, value: string) =>
    Buffer.concat([
      Buffer.from([0x00, name.length]),
      Buffer.from(name),
      Buffer.from([value.length]),
      Buffer.from(value),
    ]);
  const block = Buffer.concat([
    Buffer.from([0x82]), // :method GET
    Buffer.from([0x86]), // :scheme http
    literal(':path', '/admin/secret'),
    literal(':authority', 'a'),
  ]);
  const head = Buffer.from([0, 0, block.length, 1, 0x05, 0, 0, 0, 1]); // HEADERS, END_STREAM|END_HEADERS, stream 1
  return Buffer.concat([PREFACE, settings, head, block]);
}

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n` +
  'Connection: Upgrade, HTTP2-Settings\r\n\r\n';

test('Upgrade: h2c is served as plain HTTP/1.1: no 101, the upgrade headers never reach the backend', async () => {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(gw.http, UPGRADE('/').replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.ok(!text.includes('101 Switching'), text);
  const arrived = backend.arrivals.slice(before);
  assert.equal(arrived.length, 1);
  const seen = arrived[0]!.headers;
  assert.equal(seen.upgrade, undefined);
  assert.equal(seen['http2-settings'], undefined);
  assert.doesNotMatch(String(seen.connection ?? ''), /upgrade|http2-settings/i);
});

test('HTTP/2 frames for /admin after an h2c upgrade never become a request: nothing reaches the backend but the first GET', async () => {
  const before = backend.arrivals.length;
  const conn = backend.connections();
  const { text, closed } = await rawExchange(
    gw.http,
    Buffer.concat([Buffer.from(UPGRADE('/'), 'latin1'), h2AdminFrames()]),
    10_000,
  );
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.ok(!text.includes('101 Switching'), text);
  // The preface read as HTTP/1.1 is no request: no second answer, the connection closed by the header timeout.
  assert.equal((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, text);
  assert.equal(closed, true);
  assert.deepEqual(
    backend.arrivals.slice(before).map((a) => a.url),
    ['/'],
  );
  const upstream = backend.raw.slice(conn).join('');
  assert.ok(!upstream.includes('PRI * HTTP/2.0'), 'the preface reached the backend');
  assert.ok(!upstream.includes('/admin/secret'), 'the smuggled stream reached the backend');
});

test('an h2c upgrade aimed at /admin itself meets the admin ACL (401) and nothing is forwarded', async () => {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    gw.http,
    Buffer.concat([Buffer.from(UPGRADE('/admin'), 'latin1'), h2AdminFrames()]),
  );
  assert.match(text, /^HTTP\/1\.1 401 /);
  assert.equal(backend.arrivals.length, before);
});

test('h2c offered beside websocket is not taken: the backend sees websocket only', async () => {
  const conn = backend.connections();
  const { text } = await rawExchange(
    gw.http,
    'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, websocket\r\nConnection: Upgrade, HTTP2-Settings\r\n' +
      'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    1000,
  );
  // The recording backend does not upgrade: its answer is relayed and the connection closed.
  assert.doesNotMatch(text, /^HTTP\/1\.1 101 /);
  const upstream = backend.raw.slice(conn).join('');
  assert.doesNotMatch(upstream, /h2c/i);
  assert.doesNotMatch(upstream, /http2-settings/i);
});

describe('routes opting in with upgrades: [...]', () => {
  // A backend that switches to the protocol the gateway asked for (or to h2c under /h2c), and then echoes.
  let scripted: ScriptedBackend;
  let tgw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => {
    scripted = await startScriptedBackend((socket: Socket, _conn, head) => {
      void head.then((text) => {
        const path = /^GET (\S+)/.exec(text)?.[1] ?? '';
        const asked = /\r\nupgrade: ([^\r]*)/i.exec(text)?.[1] ?? '';
        const protocol = path.endsWith('/h2c') ? 'h2c' : asked;
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
        socket.on('data', (c: Buffer) => socket.write(c));
      });
    });
    tgw = await startAttackGateway({
      upstream: scripted.url,
      limits: 'headerTimeout: 1s\nkeepAliveTimeout: 1s',
      extra: '  - { name: tunnel, match: { path: /tunnel }, upstream: app, upgrades: [foo/1] }\n',
    });
  });
  after(async () => {
    await tgw.stop();
    await scripted.close();
  });

  const offer = (path: string, protocols: string) =>
    `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: ${protocols}\r\nConnection: Upgrade\r\n\r\n`;

  test('a listed protocol is tunnelled, and only the listed ones among those offered reach the backend', async () => {
    const conn = scripted.connections();
    const socket = connect(tgw.http, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.write(offer('/tunnel/x', 'h2c, foo/1') + 'ping');
    await scripted.untilReceived(conn, (t) => t.endsWith('ping'));
    while (!text.endsWith('ping')) await once(socket, 'data');
    socket.destroy();
    assert.match(text, /^HTTP\/1\.1 101 /);
    const upstreamHead = scripted.raw[conn]!;
    assert.match(upstreamHead, /\r\nupgrade: foo\/1\r\n/i);
    assert.doesNotMatch(upstreamHead, /h2c/i);
  });

  test('the same protocol on a route that does not list it is a plain request: no tunnel, the follow-up never forwarded', async () => {
    const conn = scripted.connections();
    const socket = connect(tgw.http, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.write(offer('/public/x', 'foo/1') + 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n');
    // Node reads nothing more after an Upgrade request it did not upgrade: the connection ends at the keep-alive
    // timeout, the follow-up unread.
    await once(socket, 'close');
    assert.doesNotMatch(text, /^HTTP\/1\.1 101 /);
    // The scripted backend answers 101 to anything: to a request that asked no upgrade that is a 502 (S14).
    assert.match(text, /^HTTP\/1\.1 502 /);
    assert.equal((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, text);
    const upstream = scripted.raw.slice(conn).join('');
    assert.ok(!upstream.includes('/admin/secret'));
    assert.ok(!/upgrade: foo/i.test(upstream), 'the upgrade reached the backend');
  });

  test('h2c on the opted-in route is still not tunnelled: the backend switching to it gets 502', async () => {
    const { text } = await rawExchange(tgw.http, offer('/tunnel/h2c', 'foo/1'), 2000);
    assert.match(text, /^HTTP\/1\.1 502 /, text);
    assert.match(text, /"code":"TP_UPSTREAM_BAD_RESPONSE"/);
  });
});

test('upgrades takes protocol tokens, named with the key path', () => {
  const problem = (value: string) => {
    try {
      parseConfigText(
        `listeners: [{ name: web, protocol: http, port: 8080 }]\nupstreams: { app: { targets: [{ url: "http://127.0.0.1:9" }] } }\nroutes: [{ upstream: app, upgrades: ${value} }]\n`,
        'cfg.yaml',
        { plugins: PLUGIN_SCHEMAS, env: {} },
      );
      return '';
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return `${err.problems[0]!.path}: ${err.problems[0]!.message}`;
    }
  };
  assert.equal(problem('[foo/1, connect-udp]'), '');
  assert.match(problem('["foo bar"]'), /^routes\[0\]\.upgrades\[0\]: expected a protocol token/);
});
