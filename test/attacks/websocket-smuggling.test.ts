// W01 (0ang3el websocket-smuggle, HAProxy websocket.vtc): an Upgrade the backend refuses (426, 200) or "accepts"
// with a 101 that does not answer the client's Sec-WebSocket-Key must not open a tunnel, or the client's next bytes
// (`GET /admin/secret`) reach the backend past every route. Turnpike chose the row's second behaviour: the refused
// answer is relayed (a bad 101 becomes 502 TP_UPSTREAM_BAD_RESPONSE) and the client connection is closed after it,
// so the follow-up is never read; a tunnel opens only on a 101 with `Upgrade: websocket` and the right
// Sec-WebSocket-Accept (src/proxy/upgrade-tunnel.ts).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

/** What the backend answers to the upgrade, by the path's last segment. */
const ANSWERS: Record<string, string> = {
  426: 'HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n',
  200: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'no-accept': 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'bad-accept':
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
  'other-protocol': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
  valid: `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
};

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startScriptedBackend((socket: Socket, _conn, head) => {
    void head.then((text) => {
      const path = /^GET (\S+)/.exec(text)?.[1] ?? '';
      socket.write(ANSWERS[path.slice(path.lastIndexOf('/') + 1)] ?? ANSWERS[426]!);
    });
  });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const upgrade = (path: string, version = '1337') =>
  `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
const FOLLOW_UP = 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n';

async function smuggle(answer: string) {
  const conn = backend.connections();
  const { text, closed } = await rawExchange(gw.http, upgrade(`/ws/${answer}`) + FOLLOW_UP);
  return { text, closed, upstream: backend.raw.slice(conn).join('') };
}

for (const [answer, status] of [
  ['426', 426],
  ['200', 200],
] as const) {
  test(`a ${answer} to the upgrade is relayed, the connection closed, and the follow-up never reaches the backend`, async () => {
    const r = await smuggle(answer);
    assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `));
    assert.equal((r.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, r.text);
    assert.equal(r.closed, true);
    assert.ok(!r.upstream.includes('/admin/secret'), r.upstream);
  });
}

for (const answer of ['no-accept', 'bad-accept', 'other-protocol']) {
  test(`a 101 with ${answer} is no switch: 502 TP_UPSTREAM_BAD_RESPONSE, no tunnel, no follow-up upstream`, async () => {
    const r = await smuggle(answer);
    assert.match(r.text, /^HTTP\/1\.1 502 /, r.text);
    assert.match(r.text, /"code":"TP_UPSTREAM_BAD_RESPONSE"/);
    assert.ok(!r.text.includes('101'), r.text);
    assert.ok(!r.text.includes(backend.url.slice(7)), 'the backend address leaked');
    assert.equal(r.closed, true);
    assert.ok(!r.upstream.includes('/admin/secret'), r.upstream);
  });
}

test('the follow-up sent after a refused upgrade is never answered as a second response', async () => {
  const r = await smuggle('426');
  assert.ok(!/HTTP\/1\.1 (200|401)[\s\S]*HTTP\/1\.1/.test(r.text), r.text);
});

test('a 101 that answers the key opens the tunnel (the control: the check can pass)', async () => {
  const conn = backend.connections();
  const socket = connect(gw.http, '127.0.0.1');
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.write(upgrade('/ws/valid') + FOLLOW_UP);
  // Inside a real tunnel the bytes are the WebSocket's to carry: they reach the backend as sent.
  await backend.untilReceived(conn, (t) => t.includes('/admin/secret'));
  socket.destroy();
  assert.match(text, /^HTTP\/1\.1 101 /);
});
