// S10 (nginx http_keepalive.t): pipelining integrity. Three requests (GET, POST with a Content-Length body, GET)
// written in one send, then batch after batch on the same kept-alive connection (100 batches under --full, 10
// bounded). The backend gets every request once, with its body intact, and the responses come back in request
// order. A POST body that holds a request line is a body, never a request.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { parseResponses } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** Reads from `socket` until `count` responses have arrived in all; returns them. */
function reader(socket: Socket) {
  let text = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  socket.on('close', () => {
    closed = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    async until(count: number) {
      for (;;) {
        const responses = parseResponses(text);
        if (responses.length >= count || closed) return { responses, closed };
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

test('pipelined batches of GET, POST and GET reach the backend once each, bodies intact, answered in order', async () => {
  const batches = scale(10, 100);
  const socket = connect(gw.http, '127.0.0.1');
  const read = reader(socket);
  const before = backend.arrivals.length;
  for (let b = 0; b < batches; b++) {
    // The body holds a whole request: pipelining must never read it as one.
    const body = `GET /admin/smuggled-${b} HTTP/1.1\r\nHost: a\r\n\r\n`;
    socket.write(
      `GET /public/p-${b}-0 HTTP/1.1\r\nHost: a\r\n\r\n` +
        `POST /public/p-${b}-1 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        `GET /public/p-${b}-2 HTTP/1.1\r\nHost: a\r\n\r\n`,
    );
    const { responses, closed } = await read.until(3 * (b + 1));
    assert.equal(closed, false, `the connection stays open (batch ${b})`);
    const urls = responses.slice(3 * b).map((r) => JSON.parse(r.body).url as string);
    assert.deepEqual(urls, [`/public/p-${b}-0`, `/public/p-${b}-1`, `/public/p-${b}-2`], 'responses in request order');
    assert.equal(JSON.parse(responses[3 * b + 1]!.body).length, body.length);
  }
  socket.end();
  const arrived = backend.arrivals.slice(before);
  assert.equal(arrived.length, 3 * batches);
  const expected = Array.from({ length: batches }, (_, b) => [0, 1, 2].map((i) => `/public/p-${b}-${i}`)).flat();
  assert.deepEqual(arrived.map((a) => a.url).sort(), [...expected].sort(), 'each request exactly once');
  // Within a batch the gateway forwards in order: each request is dispatched when it is read.
  for (let b = 0; b < batches; b++) {
    const seqs = [0, 1, 2].map((i) => arrived.find((a) => a.url === `/public/p-${b}-${i}`)!.seq);
    assert.deepEqual(
      [...seqs].sort((x, y) => x - y),
      seqs,
      `batch ${b} reached the backend in order`,
    );
  }
  for (const a of arrived.filter((x) => x.method === 'POST')) {
    assert.equal(a.complete, true);
    assert.match(a.body.toString(), /^GET \/admin\/smuggled-\d+ HTTP\/1\.1\r\nHost: a\r\n\r\n$/);
  }
  assert.ok(!backend.arrivals.some((a) => a.url.startsWith('/admin')), 'no body became a request');
});

test('a pipelined request after a refused one is never processed', async () => {
  const socket = connect(gw.http, '127.0.0.1');
  const read = reader(socket);
  const before = backend.arrivals.length;
  socket.write(
    'GET /public/pipe-ok HTTP/1.1\r\nHost: a\r\n\r\n' +
      'GET /public/pipe-bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' +
      'GET /public/pipe-after HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  const { responses, closed } = await read.until(3);
  assert.deepEqual(
    responses.map((r) => r.status),
    [200, 400],
  );
  assert.equal(closed, true);
  assert.deepEqual(
    backend.arrivals.slice(before).map((a) => a.url),
    ['/public/pipe-ok'],
  );
});
