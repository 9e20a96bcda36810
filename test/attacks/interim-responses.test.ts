// S14 (HAProxy http_1xx_responses.vtc, protocol_upgrade.vtc): 1xx and 101 from a backend. Interim responses
// before the final one are skipped (RFC 9110 §15.2: a client MUST parse 1xx it did not expect) and the client gets
// the final response; a client that sent `Expect: 100-continue` gets its 100 from the gateway itself, once the
// request is routed (the backend never sees Expect: the gateway strips it). A 101 to a request that asked for no
// upgrade is a 502 and nothing is tunnelled.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';
import { problemCode, rawRequest } from '../helpers/upstream-faults.ts';

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

/** Answers by path, once the request (head and its Content-Length body) has arrived. */
function answer(socket: Socket, request: string): void {
  const path = /^\w+ (\S+)/.exec(request)?.[1] ?? '';
  if (path === '/public/continue') {
    socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
  } else if (path === '/public/many') {
    socket.write(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
        'HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal',
    );
  } else if (path === '/public/upload') {
    const body = request.slice(request.indexOf('\r\n\r\n') + 4);
    socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  } else if (path === '/public/switch') {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\ntunnelled');
  } else {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine');
  }
}

before(async () => {
  backend = await startScriptedBackend((socket, conn) => {
    // Requests follow one another on a kept-alive connection: each is cut at its head's end and Content-Length.
    let offset = 0;
    socket.on('data', () => {
      for (;;) {
        const text = backend.raw[conn]!.slice(offset);
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        offset += end + 4 + length;
        answer(socket, text.slice(0, end + 4 + length));
      }
    });
  });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

test('a 100 Continue before the final response: the client gets the 200 and no interim it did not ask for', async () => {
  const r = await rawRequest(gw.http, 'GET /public/continue HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.deepEqual(
    r.statusLines.map((l) => l.slice(0, 12)),
    ['HTTP/1.1 200'],
  );
  assert.equal(r.body, 'final');
});

test('several interim responses (100, 102, 103, 100) before the final one: the client gets the 200', async () => {
  const r = await rawRequest(gw.http, 'GET /public/many HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body, 'final');
});

test('a client that sent Expect: 100-continue gets a 100, sends its body, and gets the 200 the backend sent after its own 100', async () => {
  let sent = false;
  const r = await rawRequest(
    gw.http,
    'POST /public/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
    {
      // The body goes only once the 100 came: without it the exchange would time out and the test fail.
      onData: (text, socket) => {
        if (!sent && text.startsWith('HTTP/1.1 100 Continue\r\n')) {
          sent = true;
          socket.write('hello world');
        }
      },
    },
  );
  assert.equal(sent, true, r.text);
  assert.deepEqual(
    r.statusLines.map((l) => l.slice(0, 12)),
    ['HTTP/1.1 100', 'HTTP/1.1 200'],
  );
  assert.equal(r.body, 'hello world');
  const upstream = backend.raw.find((t) => t.includes('POST /public/upload'))!;
  assert.ok(upstream.endsWith('\r\n\r\nhello world'), upstream);
  assert.ok(!/\r\nexpect:/i.test(upstream), 'Expect reached the backend');
});

test('after a skipped 100 Continue the client connection goes on to serve the next request', async () => {
  const r = await rawRequest(
    gw.http,
    'GET /public/continue HTTP/1.1\r\nHost: a\r\n\r\nGET /public/ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  const finals = r.text.match(/HTTP\/1\.1 \d{3}/g);
  assert.deepEqual(finals, ['HTTP/1.1 200', 'HTTP/1.1 200'], r.text);
  assert.ok(r.text.includes('final') && r.text.endsWith('genuine'), r.text);
});

test('a 101 to a request without Upgrade is a 502 and nothing is tunnelled', async () => {
  const r = await rawRequest(
    gw.http,
    'GET /public/switch HTTP/1.1\r\nHost: a\r\n\r\nGET /public/ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  const finals = r.text.match(/HTTP\/1\.1 \d{3}/g);
  // The follow-up is parsed as HTTP and answered, not written into a tunnel.
  assert.deepEqual(finals, ['HTTP/1.1 502', 'HTTP/1.1 200'], r.text);
  assert.ok(!r.text.includes('tunnelled'), r.text);
  assert.ok(!/^HTTP\/1\.1 101/m.test(r.text), r.text);
  assert.ok(r.text.includes('"code":"TP_UPSTREAM_BAD_RESPONSE"'), r.text);
  // The switched connection carried nothing more.
  const switched = backend.raw.find((t) => t.includes('GET /public/switch'))!;
  assert.ok(!/ HTTP\/1\.1\r\n[^]*GET /.test(switched.slice(switched.indexOf('GET /public/switch'))), switched);
});

test('a 101 to a POST without Upgrade is a 502 too, and the body is not relayed into a tunnel', async () => {
  const r = await rawRequest(
    gw.http,
    'POST /public/switch HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping',
  );
  assert.equal(r.status, 502, r.text);
  assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
});
