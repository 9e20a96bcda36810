// U06 (nginx proxy_read_timeout): a backend drips its response head, one byte at a time, or sends interim 1xx
// responses one after another and never the final one. Either way the client gets 504 TP_UPSTREAM_TIMEOUT once
// `timeouts.response` (time to the final response head) has passed since the request was sent, and the upstream
// connection is closed: trickling bytes or interim responses never hold the exchange open.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { ScriptedBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { problemCode, rawRequest, startRequestScriptedBackend } from '../helpers/upstream-faults.ts';

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
/** Sockets the backend dripped on, with the number of writes made. */
const drips: { socket: Socket; writes: number }[] = [];

/** The backend's own pace (it is the misbehaving party here; the test waits on the gateway's answer). */
function drip(socket: Socket, piece: (i: number) => string | null): void {
  const entry = { socket, writes: 0 };
  drips.push(entry);
  const timer = setInterval(() => {
    const next = piece(entry.writes);
    if (next === null || socket.destroyed) return clearInterval(timer);
    entry.writes++;
    socket.write(next);
  }, 50);
  socket.on('close', () => clearInterval(timer));
}

before(async () => {
  backend = await startRequestScriptedBackend((socket, { path }) => {
    if (path === '/head') drip(socket, (i) => (i < HEAD.length ? HEAD[i]! : null));
    else if (path === '/interim') drip(socket, () => 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
    else if (path === '/continue') drip(socket, () => 'HTTP/1.1 100 Continue\r\n\r\n');
  });
  gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${backend.url}" }], timeouts: { response: 500ms } } }
routes: [{ match: { path: / }, upstream: app }]
`);
});
after(async () => {
  await gw.stop();
  await backend.close();
});

for (const [path, what] of [
  ['/head', 'a head dripped one byte at a time'],
  ['/interim', 'a 103 Early Hints every 50 ms and never a final response'],
  ['/continue', 'a 100 Continue every 50 ms and never a final response'],
] as const) {
  test(`${what}: 504 at the response timeout, and the upstream connection is closed`, async () => {
    const r = await rawRequest(gw.port('web'), `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 504, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_TIMEOUT');
    assert.ok(!r.text.includes('Early Hints') && !r.text.includes('100 Continue'), r.text);
    const { socket, writes } = drips.at(-1)!;
    // Bounded: the drip was cut before the whole head (32 bytes at 50 ms) could arrive.
    assert.ok(writes < HEAD.length, `${writes} writes`);
    if (!socket.destroyed) await once(socket, 'close');
  });
}
