// U10 (Envoy: a retry needs the buffered body): a 5 MiB streamed request body; the first target resets after
// reading 1 MiB, before any response; the retry policy covers resets. Either the body was kept (idempotent
// method, Content-Length within `retries.bufferBody`) and the other target receives it whole and byte-identical,
// or it was streamed and is not retried: 502. Never a truncated body upstream. Sizes are a tenth in `npm test`.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { scale } from '../helpers/attack-scale.ts';
import {
  startRecordingBackend,
  startScriptedBackend,
  type RecordingBackend,
  type ScriptedBackend,
} from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { problemCode, rawRequest } from '../helpers/upstream-faults.ts';

const BODY = randomBytes(scale(512 * 1024, 5 * 1024 * 1024));
const READ_BEFORE_RESET = scale(100 * 1024, 1024 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');

let a: ScriptedBackend;
let b: RecordingBackend;

before(async () => {
  // A reads part of the body, then resets the connection without a byte of response.
  a = await startScriptedBackend((socket, conn) => {
    socket.on('data', () => {
      if (a.raw[conn]!.length >= READ_BEFORE_RESET) socket.resetAndDestroy();
    });
  });
  b = await startRecordingBackend();
});
after(async () => {
  await a.close();
  await b.close();
});

function gateway(retries: string) {
  return startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
limits: { maxBodySize: 16mb }
upstreams:
  app:
    targets: [{ url: "${a.url}" }, { url: "${b.url}", backup: true }]
    retries: ${retries}
routes: [{ match: { path: / }, upstream: app }]
`);
}

function send(port: number, method: string, id: string, chunked = false) {
  const head =
    `${method} /upload HTTP/1.1\r\nHost: a\r\nX-Id: ${id}\r\nConnection: close\r\n` +
    (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${BODY.length}\r\n\r\n`);
  const body = chunked
    ? Buffer.concat([Buffer.from(`${BODY.length.toString(16)}\r\n`), BODY, Buffer.from('\r\n0\r\n\r\n')])
    : BODY;
  return rawRequest(port, Buffer.concat([Buffer.from(head), body]), { timeoutMs: 10_000 });
}

const atB = (id: string) => b.arrivals.filter((x) => x.headers['x-id'] === id);

test('a kept body (PUT within bufferBody) is resent whole: the other target gets it byte-identical', async () => {
  const gw = await gateway('{ attempts: 1, bufferBody: 16mb }');
  try {
    const r = await send(gw.port('web'), 'PUT', 'kept');
    assert.equal(r.status, 200, r.text.slice(0, 400));
    assert.ok(
      a.raw.some((t) => t.includes('X-Id: kept') || t.includes('x-id: kept')),
      'A never saw the request',
    );
    const [arrival] = atB('kept');
    assert.equal(arrival!.complete, true);
    assert.equal(arrival!.body.length, BODY.length);
    assert.equal(arrival!.sha256, SHA);
  } finally {
    await gw.stop();
  }
});

for (const [what, method, retries, chunked] of [
  ['a PUT larger than bufferBody (64kb by default)', 'PUT', '{ attempts: 1 }', false],
  ['a chunked PUT (no length to keep it by)', 'PUT', '{ attempts: 1, bufferBody: 16mb }', true],
  ['a POST, even within bufferBody', 'POST', '{ attempts: 1, bufferBody: 16mb }', false],
] as const) {
  test(`${what} is streamed and not retried once sent: 502, and nothing reaches the other target`, async () => {
    const gw = await gateway(retries);
    try {
      const id = `${method}-${chunked}-${retries.length}`;
      const r = await send(gw.port('web'), method, id, chunked);
      assert.equal(r.status, 502, r.text.slice(0, 400));
      assert.equal(problemCode(r), 'TP_UPSTREAM_RESET');
      assert.equal(atB(id).length, 0);
    } finally {
      await gw.stop();
    }
  });
}
