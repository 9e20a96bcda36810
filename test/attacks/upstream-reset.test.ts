// U02 (Envoy integration disconnect tests): a backend sends its head and 1 KiB, then resets the connection
// (SO_LINGER 0: RST). As U01: the client gets exactly that 1 KiB and then the connection is cut (HTTP/1.1) or the
// stream reset with INTERNAL_ERROR (HTTP/2), never a completed body; logged TP_UPSTREAM_TRUNCATED, not retried.
// Other HTTP/2 streams on the same client connection carry on unaffected. A reset before any byte of the head
// is a 502 TP_UPSTREAM_RESET that never names the backend.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import type { ScriptedBackend } from '../helpers/recording-backend.ts';
import {
  nextExchangeEnd,
  problemCode,
  rawRequest,
  requestCount,
  startRequestScriptedBackend,
} from '../helpers/upstream-faults.ts';

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;
/** Sockets of /public/slow requests, answered once the test says so. */
const held: Socket[] = [];
let heldArrived: () => void = () => {};

before(async () => {
  backend = await startRequestScriptedBackend((socket, { path }) => {
    if (path === '/public/reset') {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'r'.repeat(1024)}`, () =>
        socket.resetAndDestroy(),
      );
    } else if (path === '/public/reset-before-head') {
      socket.resetAndDestroy();
    } else if (path === '/public/slow') {
      held.push(socket);
      heldArrived();
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine');
    }
  });
  gw = await startAttackGateway({ upstream: backend.url, upstreamExtra: 'retries: { attempts: 2 }' });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

test('a reset after 1 KiB of body: the client gets exactly that 1 KiB, then the connection is cut', async () => {
  const ended = nextExchangeEnd(gw.gateway, '/public/reset');
  const r = await rawRequest(gw.http, 'GET /public/reset HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'r'.repeat(1024));
  assert.equal(r.closed, true);
  assert.equal((await ended).errorCode, 'TP_UPSTREAM_TRUNCATED');
  assert.equal(requestCount(backend, '/public/reset'), 1, 'retried after bytes reached the client');
});

test('a reset before the head is a 502 TP_UPSTREAM_RESET that does not name the backend', async () => {
  const r = await rawRequest(gw.http, 'GET /public/reset-before-head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 502);
  assert.equal(problemCode(r), 'TP_UPSTREAM_RESET');
  assert.ok(!r.text.includes(String(backend.port)) && !r.text.includes('127.0.0.1'), r.text);
});

function h2Get(session: ClientHttp2Session, path: string) {
  const req = session.request({ ':path': path });
  let body = '';
  let ended = false;
  req.setEncoding('latin1');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => (ended = true));
  req.on('error', () => {});
  req.end();
  return new Promise<{ body: string; ended: boolean; rstCode: number | undefined }>((resolve) =>
    req.on('close', () => resolve({ body, ended, rstCode: req.rstCode })),
  );
}

for (const listener of ['h2 over TLS', 'h2c'] as const) {
  test(`${listener}: the reset stream is reset, and a stream in flight beside it on the same connection completes`, async () => {
    const session =
      listener === 'h2c'
        ? h2connect(`http://127.0.0.1:${gw.http}`)
        : h2connect(`https://localhost:${gw.https}`, { ca: gw.ca });
    try {
      const arrived = new Promise<void>((resolve) => (heldArrived = resolve));
      const slow = h2Get(session, '/public/slow');
      await arrived; // the slow stream is in flight at the backend before the other one resets
      const reset = await h2Get(session, '/public/reset');
      assert.equal(reset.body, 'r'.repeat(1024));
      assert.equal(reset.ended, false, 'END_STREAM on a body the backend never finished');
      assert.equal(reset.rstCode, 2); // INTERNAL_ERROR
      held.pop()!.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow');
      const done = await slow;
      assert.deepEqual(done, { body: 'slow', ended: true, rstCode: 0 });
      // And the connection takes new streams.
      const next = await h2Get(session, '/public/ok');
      assert.equal(next.body, 'genuine');
      assert.equal(session.closed || session.destroyed, false);
    } finally {
      session.destroy();
      if (!session.closed) await once(session, 'close');
    }
  });
}
