// The gRPC-Web codec alone: text-mode decoding across chunk boundaries and mid-stream padding, the refusal of
// what is not base64, the trailer frame's layout, and content types.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  grpcWebContentType,
  grpcWebType,
  GrpcWebResponseEncoder,
  GrpcWebTextDecoder,
  trailerFrame,
} from '../../src/http/grpc-web.ts';

/** Runs `chunks` through a stage; resolves with what came out, or rejects with its error. */
function run(stage: NodeJS.ReadWriteStream, chunks: (string | Buffer)[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    stage.on('data', (c: Buffer) => out.push(c));
    stage.on('end', () => resolve(Buffer.concat(out)));
    stage.on('error', reject);
    for (const c of chunks) stage.write(c);
    stage.end();
  });
}

test('text decoding: quads split across chunks and padding between segments', async () => {
  const a = Buffer.from('hello, ');
  const b = Buffer.from('world!?');
  const text = a.toString('base64') + b.toString('base64'); // "aGVsbG8sIA==d29ybGQhPw=="
  const pieces = [text.slice(0, 3), text.slice(3, 13), text.slice(13, 14), text.slice(14)];
  assert.deepEqual(await run(new GrpcWebTextDecoder(), pieces), Buffer.concat([a, b]));
  assert.deepEqual(await run(new GrpcWebTextDecoder(), ['aGVs\r\nbG8=']), Buffer.from('hello'));
});

test('text decoding refuses what is not base64, and a cut quad at the end, with TP_BAD_REQUEST', async () => {
  for (const bad of [['AAAA!!!!'], ['AA=A'], ['AAA']]) {
    await assert.rejects(run(new GrpcWebTextDecoder(), bad), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'TP_BAD_REQUEST', bad.join());
      return true;
    });
  }
});

test('the trailer frame: flag 0x80, length, name:value lines; the encoder ends the body with it', async () => {
  const f = trailerFrame({ 'Grpc-Status': '5', 'grpc-message': 'not%20found' });
  assert.equal(f[0], 0x80);
  assert.equal(f.readUInt32BE(1), f.length - 5);
  assert.equal(f.subarray(5).toString(), 'grpc-status:5\r\ngrpc-message:not%20found\r\n');
  const enc = new GrpcWebResponseEncoder('text');
  enc.takeTrailers({ 'grpc-status': '0' });
  const out = (await run(enc, [Buffer.from([0, 0, 0, 0, 1, 42])])).toString();
  assert.equal(
    out,
    Buffer.from([0, 0, 0, 0, 1, 42]).toString('base64') + trailerFrame({ 'grpc-status': '0' }).toString('base64'),
  );
});

test('content types: mode and message format', () => {
  assert.deepEqual(grpcWebType('application/grpc-web+proto'), { mode: 'binary', suffix: '+proto' });
  assert.deepEqual(grpcWebType('application/grpc-web-text; charset=utf-8'), { mode: 'text', suffix: '' });
  assert.equal(grpcWebType('application/grpc'), null);
  assert.equal(grpcWebType('application/grpc-webx'), null);
  assert.equal(grpcWebContentType('text', '+proto'), 'application/grpc-web-text+proto');
});
