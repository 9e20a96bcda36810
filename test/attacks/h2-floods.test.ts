// H06 (the 2019 HTTP/2 flood set, CVE-2019-9512..9518; Envoy 1.11.1 mitigations, Node maxSessionInvalidFrames):
// PING, SETTINGS, empty DATA, empty HEADERS, 1-byte WINDOW_UPDATE and PRIORITY floods, each on its own connection
// to the h2c and the TLS listener, the PING flood from a client that never reads. Turnpike's frame guard counts
// these frames per connection and second and ends the connection past `h2MaxControlFramesPerSecond` (default
// 1000, tested here at 50 and its default) with GOAWAY(ENHANCE_YOUR_CALM). Frames nghttp2 refuses (empty HEADERS,
// DATA on a closed stream) also trip Node's maxSessionInvalidFrames (100) first, answered with the same GOAWAY
// code. Other connections are unaffected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import {
  dataFrame,
  ERROR,
  frame,
  FRAME,
  FLAG,
  headersFrame,
  pingFrame,
  priorityFrame,
  RawH2,
  request,
  settingsFrame,
  windowUpdateFrame,
  type H2Target,
} from '../helpers/h2-frames.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

/** Writes `make(i)` frames in batches until `count` are sent or the server closes; returns how many went. */
async function flood(c: RawH2, count: number, make: (i: number) => Buffer): Promise<number> {
  let sent = 0;
  while (sent < count && !c.closed) {
    const frames: Buffer[] = [];
    for (let j = 0; j < 100 && sent < count; j++, sent++) frames.push(make(sent));
    if (!(await c.write(Buffer.concat(frames)))) break;
  }
  return sent;
}

async function served(target: H2Target, stream = 1, c?: RawH2): Promise<boolean> {
  const conn = c ?? (await RawH2.open(target));
  conn.send(headersFrame(stream, request('/public/ok'), { endStream: true }));
  const o = await conn.outcome(stream);
  if (c === undefined) conn.close();
  return o.kind === 'response' && o.status === 200;
}

describe('with h2MaxControlFramesPerSecond: 50', () => {
  let backend: RecordingBackend;
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => {
    backend = await startRecordingBackend();
    gw = await startAttackGateway({ upstream: backend.url, limits: 'h2MaxControlFramesPerSecond: 50' });
  });
  after(async () => {
    await gw.stop();
    await backend.close();
  });

  // The client's SETTINGS and its ACK of the server's count too: 48 PINGs make 50.
  test('50 control frames are allowed; the connection is still served', async () => {
    const c = await RawH2.open({ port: gw.http });
    await c.next((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'SETTINGS ACK');
    await flood(c, 48, () => pingFrame());
    assert.equal(await served({ port: gw.http }, 1, c), true);
    c.close();
  });

  // The limit counts in one-second windows that start at a connection's first control frame. 101 PINGs in one
  // write put more than 50 in one window wherever a window boundary falls (the handshake's frames may have opened a
  // window that closes before, or while, the burst is read: a stalled loop made "49 PINGs" miss it once).
  test('more than 50 in one second get GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    const c = await RawH2.open({ port: gw.http });
    await c.next((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'SETTINGS ACK');
    await flood(c, 101, () => pingFrame());
    assert.equal(await c.goaway(), ERROR.ENHANCE_YOUR_CALM);
    await c.untilClosed();
  });
});

describe('with the default limits', () => {
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

  const N = scale(5_000, 50_000);
  const FLOODS: [string, (c: RawH2) => Promise<number>][] = [
    ['PING', (c) => flood(c, N, (i) => pingFrame(Buffer.alloc(8, i % 256)))],
    ['SETTINGS', (c) => flood(c, N, () => settingsFrame([[2, 0]]))],
    [
      'empty DATA',
      async (c) => {
        c.send(headersFrame(1, request('/public/slow', 'POST')));
        return flood(c, N, () => dataFrame(1, ''));
      },
    ],
    ['empty HEADERS', (c) => flood(c, N, (i) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 2 * i + 1))],
    ['1-byte WINDOW_UPDATE on stream 0', (c) => flood(c, N, () => windowUpdateFrame(0, 1))],
    ['PRIORITY', (c) => flood(c, N, (i) => priorityFrame(2 * i + 1, 0))],
  ];

  for (const side of ['h2c', 'tls'] as const) {
    describe(`over ${side}`, () => {
      const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });
      for (const [name, run] of FLOODS) {
        test(`a ${name} flood gets GOAWAY(ENHANCE_YOUR_CALM) and is closed; another connection is served`, async () => {
          const c = await RawH2.open(target());
          await run(c);
          assert.equal(await c.goaway(), ERROR.ENHANCE_YOUR_CALM);
          await c.untilClosed();
          assert.equal(await served(target()), true);
        });
      }

      test('a PING flood from a client that never reads is closed', async () => {
        const c = await RawH2.open(target());
        c.socket.pause();
        await flood(c, N, () => pingFrame());
        c.socket.resume();
        const code = await c.goaway();
        assert.equal(code, ERROR.ENHANCE_YOUR_CALM);
        await c.untilClosed();
      });

      test('1,500 connection WINDOW_UPDATEs of 32 KiB (a fast download) are not counted as a flood', async () => {
        const c = await RawH2.open(target());
        // 1,500 x 32 KiB stays under the 2^31-1 window limit; each is what nghttp2 sends per half window read.
        await flood(c, 1_500, () => windowUpdateFrame(0, 32_768));
        assert.equal(await served(target(), 1, c), true);
        c.close();
      });
    });
  }
});
