// S05 (http-garden Node/Akamai/hyper bugs; Node CVE-2024-22019): chunk-size and chunk-extension tricks. Node's parser
// refuses every malformed chunk line with 400 + close. The gateway streams bodies, so when the error is in the body
// the head may already be upstream: the upstream request is then aborted (the backend never sees it complete) and
// nothing after the error is forwarded. Legal extensions are accepted and stripped (the body is re-framed upstream).
// A 20 KiB extension is refused once Node's 16 KiB bound is crossed, without reading the rest.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
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

const HEAD = 'POST /public/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
const midBody = { midBody: true };

test('a chunk size that is not plain hex digits is refused with 400 + close', async () => {
  for (const size of ['0x5', '+5', '5 ', ' 5', '5\t', '-5', '0_2e', '5_', 'g', '']) {
    await assertRefused(gw.http, backend, `${HEAD}${size}\r\nhello\r\n0\r\n\r\n`, 400, 'TP_BAD_REQUEST', midBody);
  }
});

test('a chunk size that overflows 64 bits is refused, not wrapped around', async () => {
  for (const size of ['FFFFFFFFFFFFFFFFF', '10000000000000000', '00000000000000000000000000000000000000005x']) {
    await assertRefused(gw.http, backend, `${HEAD}${size}\r\nhello\r\n0\r\n\r\n`, 400, 'TP_BAD_REQUEST', midBody);
  }
});

test('malformed chunk-extension lines are refused', async () => {
  for (const line of ['5\r\r;a', '5;\n', '5 ;a=b', '5;a=b\n', '5;a\x00=b', '5;a="b\r\nc"', '5\r\n;a']) {
    await assertRefused(gw.http, backend, `${HEAD}${line}\r\nhello\r\n0\r\n\r\n`, 400, 'TP_BAD_REQUEST', midBody);
  }
});

test('chunk data not followed by CRLF, or ended by a bare LF, is refused and the upstream request aborted', async () => {
  for (const body of [
    'a\r\n0123456789X0\r\n\r\n',
    '5\r\nhello\n0\r\n\r\n',
    '5\r\nhelloXX\r\n0\r\n\r\n',
    '5\nhello\n0\n\n',
    '5\r\nhello\r\n0\r\nX-T 1\r\n\r\n',
    '5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n',
    '5\r\nhello\r\n0\r\n\n',
  ]) {
    await assertRefused(gw.http, backend, HEAD + body, 400, 'TP_BAD_REQUEST', midBody);
  }
  assert.ok(!backend.raw.join('').includes('X0'), 'nothing after the error went upstream');
});

test('legal chunk extensions, leading zeros and trailers are accepted and the body reaches the backend intact', async () => {
  for (const [i, body] of [
    '5;a=b\r\nhello\r\n0\r\n\r\n',
    '5;a="b c";d\r\nhello\r\n0;e=f\r\n\r\n',
    '005\r\nhello\r\n00\r\n\r\n',
    '2\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: 1\r\n\r\n',
  ].entries()) {
    const url = `/public/chunks-${i}`;
    const r = await exchange(
      gw.http,
      `POST ${url} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.equal(r.responses.length, 1, r.text);
    assert.equal(r.responses[0]!.status, 200, r.text);
    const got = backend.arrivals.find((a) => a.url === url)!;
    assert.equal(got.body.toString(), 'hello');
    assert.equal(got.complete, true);
  }
  // Re-framed upstream: the client's extensions never reach the backend.
  assert.ok(!backend.raw.join('').includes(';a='));
});

test('a chunk extension longer than 16 KiB is refused without reading the rest of it', async () => {
  const cap = scale(16, 64) * 1024 * 1024;
  const { status, written } = await new Promise<{ status: string; written: number }>((resolve, reject) => {
    const socket = connect(gw.http, '127.0.0.1');
    let written = 0;
    let answer = '';
    let done = false;
    const piece = Buffer.alloc(64 * 1024, 'a');
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ status: answer.split('\r\n')[0]!, written });
    };
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n\r\n')) finish();
    });
    socket.on('close', finish);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return finish();
      reject(err);
    });
    socket.write(`${HEAD}5;a=`);
    const pump = () => {
      while (!done && written < cap) {
        written += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  assert.match(status, /^HTTP\/1\.1 400 /);
  assert.ok(written < cap, `answered after ${written} bytes of extension, before all ${cap} were sent`);
});
