// H05 (CVE-2024-27316 class, Node CVE-2024-27983; HAProxy glitches): a header block that never ends. HEADERS
// without END_HEADERS, then CONTINUATION frames without end (fresh header names each time, or one value spread
// over megabytes, or empty frames). Turnpike's frame guard counts the block's bytes as they arrive and ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM) once they pass `maxHeaderSize` (default 16 KiB; empty CONTINUATION
// frames count against `h2MaxControlFramesPerSecond`), long before the flood's end; nghttp2's own cap (8
// CONTINUATION frames per block, answered GOAWAY(ENHANCE_YOUR_CALM) here too) may trip first, and a declared
// 10 MB value may be refused by nghttp2 as a COMPRESSION_ERROR. Nothing reaches the backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { continuationFrame, ERROR, headersFrame, RawH2, request, type H2Target } from '../helpers/h2-frames.ts';
import { encodeHeaderBlock } from '../helpers/hpack.ts';
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

/** Sends HEADERS (no END_HEADERS) then CONTINUATION frames from `next` until the server closes or `max` bytes. */
async function continuations(c: RawH2, path: string, next: (i: number) => Buffer, max: number): Promise<number> {
  await c.write(headersFrame(1, request(path), { endHeaders: false, endStream: true }));
  let bytes = 0;
  for (let i = 0; bytes < max && !c.closed; i++) {
    const frames: Buffer[] = [];
    for (let j = 0; j < 50; j++) frames.push(continuationFrame(1, next(i * 50 + j)));
    const chunk = Buffer.concat(frames);
    if (!(await c.write(chunk))) break;
    bytes += chunk.length;
  }
  return bytes;
}

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });
    const MAX = scale(1, 10) * 1024 * 1024;

    test('endless CONTINUATION frames of fresh header names: GOAWAY(ENHANCE_YOUR_CALM), nothing forwarded', async () => {
      const c = await RawH2.open(target());
      const path = `/public/${side}-names`;
      const sent = continuations(
        c,
        path,
        (i) => encodeHeaderBlock([[`x-h${i}-${Math.random().toString(36).slice(2)}`, 'v']]),
        MAX,
      );
      // Whichever bound trips first: the guard's block size, or nghttp2 refusing a 10 MB string length.
      const code = await c.goaway();
      assert.ok(code === ERROR.ENHANCE_YOUR_CALM || code === ERROR.COMPRESSION_ERROR, String(code));
      await c.untilClosed();
      await sent;
      assert.equal(backend.arrivals.filter((a) => a.url === path).length, 0);
    });

    test('one value spread over megabytes of CONTINUATION: GOAWAY(ENHANCE_YOUR_CALM or COMPRESSION_ERROR), nothing forwarded', async () => {
      const c = await RawH2.open(target());
      const path = `/public/${side}-value`;
      const piece = Buffer.alloc(16_000, 'a');
      let first = true;
      const sent = continuations(
        c,
        path,
        () => {
          if (!first) return piece;
          first = false;
          // A literal whose value length says 10 MB: the rest of the block is that one value.
          return Buffer.concat([Buffer.from([0, 1, 0x78, 0x7f]), Buffer.from([0x81, 0xd1, 0xbf, 0x04]), piece]);
        },
        MAX,
      );
      // Whichever bound trips first: the guard's block size, or nghttp2 refusing a 10 MB string length.
      const code = await c.goaway();
      assert.ok(code === ERROR.ENHANCE_YOUR_CALM || code === ERROR.COMPRESSION_ERROR, String(code));
      await c.untilClosed();
      await sent;
      assert.equal(backend.arrivals.filter((a) => a.url === path).length, 0);
    });

    test('endless empty CONTINUATION frames: GOAWAY(ENHANCE_YOUR_CALM)', async () => {
      const c = await RawH2.open(target());
      const empty = Buffer.alloc(0);
      const sent = continuations(c, `/public/${side}-empty`, () => empty, MAX);
      assert.equal(await c.goaway(), ERROR.ENHANCE_YOUR_CALM);
      await c.untilClosed();
      await sent;
    });

    test('a benign request on another connection is served after the floods', async () => {
      const c = await RawH2.open(target());
      c.send(headersFrame(1, request('/public/ok'), { endStream: true }));
      const o = await c.outcome(1);
      c.close();
      assert.equal(o.kind === 'response' && o.status, 200);
    });
  });
}
