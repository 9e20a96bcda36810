// B01 (nginx `client_max_body_size`, `http_expect_100_continue.t`): bodies over `maxBodySize` (10 MiB by default).
// A declared length over the limit is refused with 413 before routing reaches the terminal, so no `100 Continue`
// is ever sent and nothing is forwarded. A body without a declared length (chunked, or HTTP/2 DATA) streams to the
// backend as it comes and is counted there; of the row's two behaviours Turnpike answers 413 (the response head
// has not left yet: the backend never answers a body it has not finished reading) and aborts the upstream request,
// so the backend sees a body that never completes, never a complete truncated one.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { openClient, writeRepeated } from '../helpers/slow-clients.ts';

const LIMIT = 10 * 1024 * 1024; // the default maxBodySize
const MiB = Buffer.alloc(1024 * 1024, 0x61);

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

/** Splits a raw HTTP/1.1 answer into status, lower-cased headers and body. */
function parse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const [line, ...fields] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
  return { status: Number(line!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

test('a declared Content-Length one past the limit gets 413 and a close, and reaches no backend', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write(`POST /public/up HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`);
  const text = await c.done;
  const r = parse(text);
  assertProblem(r, 413, 'TP_BODY_TOO_LARGE', [backend.url]);
  assert.equal(r.headers['connection'], 'close');
  assert.equal(backend.arrivals.length, before);
});

test('with Expect: 100-continue, a length one past the limit gets 413 and never a 100 Continue', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write(`POST /public/up HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMIT + 1}\r\nExpect: 100-continue\r\n\r\n`);
  const text = await c.done;
  assert.ok(!text.includes('100 Continue'), text);
  assert.match(text, /^HTTP\/1\.1 413 /);
  assert.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1, text);
  assert.equal(backend.arrivals.length, before);
});

test('a body of exactly the limit, announced with Expect: 100-continue, gets 100 Continue and reaches the backend whole', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write(`POST /public/up HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMIT}\r\nExpect: 100-continue\r\n\r\n`);
  await c.until((t) => t.includes('\r\n\r\n'), '100 Continue');
  assert.match(c.text(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  await writeRepeated(c.socket, MiB, 10);
  await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t.slice(25)), 'the response');
  const r = parse(c.text().slice(c.text().indexOf('\r\n\r\n') + 4));
  assert.equal(r.status, 200);
  const arrival = backend.arrivals[before]!;
  assert.equal(arrival.complete, true);
  assert.equal(arrival.body.length, LIMIT);
  c.socket.destroy();
});

test('a chunked body of exactly the limit reaches the backend whole', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write('POST /public/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = Buffer.concat([Buffer.from(`${MiB.length.toString(16)}\r\n`), MiB, Buffer.from('\r\n')]);
  await writeRepeated(c.socket, chunk, 10);
  c.socket.write('0\r\n\r\n');
  await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t), 'the response');
  assert.equal(parse(c.text()).status, 200);
  await backend.untilArrivals(before + 1);
  assert.equal(backend.arrivals[before]!.complete, true);
  assert.equal(backend.arrivals[before]!.body.length, LIMIT);
  c.socket.destroy();
});

test('a chunked body crossing the limit mid-stream gets 413 and the backend sees an aborted body, never a complete one', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write('POST /public/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = Buffer.concat([Buffer.from(`${MiB.length.toString(16)}\r\n`), MiB, Buffer.from('\r\n')]);
  await writeRepeated(c.socket, chunk, 10);
  // One byte past the limit, then a clean end: a gateway that forwarded it as is would complete the body.
  c.socket.write('1\r\nX\r\n0\r\n\r\n');
  const text = await c.done;
  const r = parse(text);
  assertProblem(r, 413, 'TP_BODY_TOO_LARGE', [backend.url]);
  await backend.untilArrivals(before + 1);
  const arrival = backend.arrivals[before]!;
  assert.equal(arrival.complete, false, 'the backend must not see the body end');
  assert.equal(backend.arrivals.length, before + 1);
});

test('a chunked body far over the limit is cut off: the client is answered 413 or reset, the backend never completes it', async () => {
  const before = backend.arrivals.length;
  const c = await openClient(gw.http);
  c.socket.write('POST /public/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = Buffer.concat([Buffer.from(`${MiB.length.toString(16)}\r\n`), MiB, Buffer.from('\r\n')]);
  // The writer stops when the gateway closes: it must not have to upload all 64 MiB to be told.
  await writeRepeated(c.socket, chunk, 64);
  if (!c.socket.destroyed) c.socket.write('0\r\n\r\n');
  const text = await c.done;
  if (text !== '') assertProblem(parse(text), 413, 'TP_BODY_TOO_LARGE');
  await backend.untilArrivals(before + 1);
  assert.equal(backend.arrivals[before]!.complete, false);
  assert.ok(backend.arrivals[before]!.body.length < 20 * 1024 * 1024, 'the gateway stopped forwarding at the limit');
});

test('HTTP/2: a content-length one past the limit gets 413 and reaches no backend', async () => {
  const before = backend.arrivals.length;
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  try {
    const req = session.request({ ':method': 'POST', ':path': '/public/up', 'content-length': String(LIMIT + 1) });
    const headers = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      req.once('response', (h) => resolve(h));
      req.once('error', reject);
    });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    await new Promise((resolve) => req.once('close', resolve));
    assertProblem({ status: Number(headers[':status']), headers, body }, 413, 'TP_BODY_TOO_LARGE');
    assert.equal(backend.arrivals.length, before);
  } finally {
    session.destroy();
  }
});

test('HTTP/2: DATA crossing the limit without a content-length gets 413, the stream is reset, the backend body aborted', async () => {
  const before = backend.arrivals.length;
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  try {
    const req = session.request({ ':method': 'POST', ':path': '/public/up' });
    req.on('error', () => {});
    let status = 0;
    req.once('response', (h) => (status = Number(h[':status'])));
    // RST_STREAM from the gateway shows as 'aborted' (Node's client keeps a stream with a blocked write open).
    const stopped = new Promise((resolve) => (req.once('aborted', resolve), req.once('close', resolve)));
    let over = false;
    stopped.then(() => (over = true));
    req.resume();
    for (let i = 0; i < 64 && !over; i++) {
      if (!req.write(MiB)) await Promise.race([new Promise((resolve) => req.once('drain', resolve)), stopped]);
    }
    await stopped;
    assert.equal(status, 413);
    await backend.untilArrivals(before + 1);
    assert.equal(backend.arrivals[before]!.complete, false);
  } finally {
    session.destroy();
  }
});
