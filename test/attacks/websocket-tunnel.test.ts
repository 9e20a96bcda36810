// W03 (Autobahn case classes 1-7, 9, through the proxy): Turnpike does not inspect WebSocket frames; past a valid
// 101 it is a byte tunnel, so the row's second behaviour applies: every byte is relayed unchanged both ways (the
// malformed frames too: closing 1002/1007/1009 is the endpoints' job), a half-close is passed on and the answer
// after it still delivered, and the upstream's idle timeout (timeouts.idle) closes a silent tunnel.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Per backend connection: what it read past the upgrade head, and whether the client's end reached it. */
const received: Buffer[][] = [];
const ended: Promise<void>[] = [];
const closed: Promise<void>[] = [];
let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  // After the 101 the backend echoes every byte; when the client's side ends it says "bye" and ends too.
  backend = await startScriptedBackend((socket: Socket, conn, head) => {
    const chunks: Buffer[] = (received[conn] = []);
    let all = Buffer.alloc(0);
    let upgraded = false;
    closed[conn] = new Promise((resolve) => socket.once('close', () => resolve()));
    ended[conn] = new Promise((resolve) =>
      socket.once('end', () => {
        socket.end('bye');
        resolve();
      }),
    );
    socket.on('data', (c: Buffer) => {
      if (upgraded) {
        chunks.push(c);
        socket.write(c);
        return;
      }
      all = Buffer.concat([all, c]);
    });
    void head.then((text) => {
      upgraded = true;
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          `Sec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
      );
      const extra = all.subarray(Buffer.byteLength(text, 'latin1'));
      if (extra.length > 0) {
        chunks.push(extra);
        socket.write(extra);
      }
    });
  });
  gw = await startAttackGateway({ upstream: backend.url, upstreamExtra: 'timeouts: { idle: 1s }' });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** An open tunnel: the socket, and the bytes it got past the 101 head. */
async function openTunnel(): Promise<{ socket: Socket; conn: number; got: () => Buffer }> {
  const conn = backend.connections();
  const socket = connect(gw.http, '127.0.0.1');
  let buf = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
  socket.write(UPGRADE);
  while (buf.indexOf('\r\n\r\n') === -1) await once(socket, 'data');
  assert.match(buf.toString('latin1'), /^HTTP\/1\.1 101 /);
  const start = buf.indexOf('\r\n\r\n') + 4;
  return { socket, conn, got: () => buf.subarray(start) };
}

async function untilLength(socket: Socket, got: () => Buffer, n: number): Promise<void> {
  while (got().length < n) await once(socket, 'data');
}

test('malformed frames (unmasked, 2^63 length, fragmented ping, invalid UTF-8) are relayed byte for byte both ways', async () => {
  const frames = Buffer.concat([
    Buffer.from([0x81, 0x05]), // unmasked text frame from a client
    Buffer.from('hello'),
    Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), // masked, length 2^63-1
    Buffer.from([0x09, 0x80, 0, 0, 0, 0]), // PING without FIN (a fragmented control frame)
    Buffer.from([0x81, 0x84, 0, 0, 0, 0, 0xc0, 0xaf, 0xed, 0xa0]), // text frame, invalid UTF-8
  ]);
  const t = await openTunnel();
  t.socket.write(frames);
  await untilLength(t.socket, t.got, frames.length);
  assert.equal(sha(Buffer.concat(received[t.conn]!)), sha(frames), 'the backend got other bytes');
  assert.equal(sha(t.got()), sha(frames), 'the client got other bytes back');
  t.socket.destroy();
});

test('a large random stream is echoed through the tunnel with matching sha256 both ways', async () => {
  const size = scale(4 * 1024 * 1024, 256 * 1024 * 1024);
  const data = randomBytes(size);
  const t = await openTunnel();
  t.socket.write(data);
  await untilLength(t.socket, t.got, size);
  assert.equal(sha(Buffer.concat(received[t.conn]!)), sha(data));
  assert.equal(sha(t.got()), sha(data));
  t.socket.destroy();
});

test("a client's half-close reaches the backend and the backend's answer after it is still delivered", async () => {
  const t = await openTunnel();
  t.socket.write('last words');
  t.socket.end();
  await ended[t.conn];
  await once(t.socket, 'close');
  assert.equal(t.got().toString(), 'last wordsbye');
});

test('a silent tunnel is closed at the idle timeout, on both sides', async () => {
  const t = await openTunnel();
  await once(t.socket, 'close');
  await closed[t.conn];
  assert.equal(t.got().length, 0);
});
