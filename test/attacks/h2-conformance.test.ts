// H09 (a scripted subset of h2spec's http2/* cases; RFC 9113 §3.4, §4.2, §5.1, §6): each case on its own
// connection to the h2c and the TLS listener, checking the GOAWAY or RST_STREAM code the RFC names. Node's
// nghttp2 answers most of them; two it lets by (HEADERS reopening a lower stream id after a higher one, PRIORITY
// on stream 0) are caught by Turnpike's frame guard with GOAWAY(PROTOCOL_ERROR). Where the RFC allows a stream
// error, a connection error is accepted too (§5.4.1).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import {
  dataFrame,
  ERROR,
  FLAG,
  frame,
  FRAME,
  headersFrame,
  pingFrame,
  priorityFrame,
  RawH2,
  request,
  rstFrame,
  settingsFrame,
  u32,
  windowUpdateFrame,
  type H2Target,
  type Outcome,
} from '../helpers/h2-frames.ts';
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

const get = (stream: number, path = '/public/c'): Buffer => headersFrame(stream, request(path), { endStream: true });

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });

    /** Opens a connection, sends `frames`, returns the GOAWAY code (null: closed without one). */
    const goawayAfter = async (...frames: Buffer[]): Promise<number | null> => {
      const c = await RawH2.open(target());
      c.send(...frames);
      const code = await c.goaway();
      await c.untilClosed();
      return code;
    };
    const outcomeOf = async (stream: number, ...frames: Buffer[]): Promise<Outcome> => {
      const c = await RawH2.open(target());
      c.send(...frames);
      const o = await c.outcome(stream);
      c.close();
      return o;
    };
    const assertProtocolError = (o: Outcome, code: number = ERROR.PROTOCOL_ERROR): void =>
      assert.ok((o.kind === 'goaway' || o.kind === 'reset') && o.code === code, JSON.stringify(o));

    test('HEADERS on a lower stream id after a higher one: GOAWAY(PROTOCOL_ERROR), the lower request never forwarded', async () => {
      const c = await RawH2.open(target());
      c.send(get(5, `/public/${side}-high`));
      assert.equal((await c.outcome(5)).kind, 'response');
      c.send(get(3, `/public/${side}-low`));
      assert.equal(await c.goaway(), ERROR.PROTOCOL_ERROR);
      await c.untilClosed();
      assert.equal(backend.arrivals.filter((a) => a.url === `/public/${side}-low`).length, 0);
    });

    test('HEADERS reusing a closed stream id: GOAWAY(PROTOCOL_ERROR or STREAM_CLOSED)', async () => {
      const c = await RawH2.open(target());
      c.send(get(1));
      assert.equal((await c.outcome(1)).kind, 'response');
      c.send(get(1, `/public/${side}-again`));
      const code = await c.goaway();
      assert.ok(code === ERROR.PROTOCOL_ERROR || code === ERROR.STREAM_CLOSED, String(code));
      assert.equal(backend.arrivals.filter((a) => a.url === `/public/${side}-again`).length, 0);
    });

    test('trailers on a stream still open are not mistaken for a reopened stream', async () => {
      const c = await RawH2.open(target());
      c.send(headersFrame(3, request(`/public/${side}-trailers`, 'POST')), dataFrame(3, 'body'));
      c.send(get(5));
      assert.equal((await c.outcome(5)).kind, 'response');
      c.send(headersFrame(3, [['x-trailer', '1']], { endStream: true }));
      const o = await c.outcome(3);
      c.close();
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
    });

    test('PRIORITY on stream 0: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(priorityFrame(0, 1)), ERROR.PROTOCOL_ERROR);
    });

    test('HEADERS on an even (server) stream id: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(get(2)), ERROR.PROTOCOL_ERROR);
    });

    test('DATA on stream 0: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(dataFrame(0, 'x')), ERROR.PROTOCOL_ERROR);
    });

    test('DATA on an idle stream: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(dataFrame(7, 'x', true)), ERROR.PROTOCOL_ERROR);
    });

    test('a frame over SETTINGS_MAX_FRAME_SIZE: GOAWAY(FRAME_SIZE_ERROR)', async () => {
      assert.equal(
        await goawayAfter(headersFrame(1, request('/public/big', 'GET', [['x', 'a'.repeat(16_400)]]))),
        ERROR.FRAME_SIZE_ERROR,
      );
    });

    test('CONTINUATION without HEADERS, and a frame inside a header block: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1)), ERROR.PROTOCOL_ERROR);
      const open = headersFrame(1, request('/public/x'), { endHeaders: false });
      assert.equal(await goawayAfter(open, pingFrame()), ERROR.PROTOCOL_ERROR);
    });

    test('a SETTINGS frame of a length not a multiple of 6: GOAWAY(FRAME_SIZE_ERROR)', async () => {
      assert.equal(await goawayAfter(frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5))), ERROR.FRAME_SIZE_ERROR);
    });

    test('SETTINGS with ACK and a payload: GOAWAY(FRAME_SIZE_ERROR)', async () => {
      assert.equal(await goawayAfter(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(6))), ERROR.FRAME_SIZE_ERROR);
    });

    test('SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1: GOAWAY(FLOW_CONTROL_ERROR)', async () => {
      assert.equal(await goawayAfter(settingsFrame([[4, 0x80000000]])), ERROR.FLOW_CONTROL_ERROR);
    });

    test('a WINDOW_UPDATE of 0 on the connection: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(windowUpdateFrame(0, 0)), ERROR.PROTOCOL_ERROR);
    });

    test('a WINDOW_UPDATE overflowing the connection window: GOAWAY(FLOW_CONTROL_ERROR)', async () => {
      assert.equal(await goawayAfter(windowUpdateFrame(0, 0x7fffffff)), ERROR.FLOW_CONTROL_ERROR);
    });

    test('a PING of 7 bytes: GOAWAY(FRAME_SIZE_ERROR)', async () => {
      assert.equal(await goawayAfter(frame(FRAME.PING, 0, 0, Buffer.alloc(7))), ERROR.FRAME_SIZE_ERROR);
    });

    test('RST_STREAM on an idle stream: GOAWAY(PROTOCOL_ERROR)', async () => {
      assert.equal(await goawayAfter(rstFrame(9, ERROR.CANCEL)), ERROR.PROTOCOL_ERROR);
    });

    test('a stream depending on itself: PROTOCOL_ERROR', async () => {
      const block = headersFrame(1, request('/public/self'), { endStream: true }).subarray(9);
      const payload = Buffer.concat([u32(1), Buffer.from([15]), block]);
      assertProtocolError(
        await outcomeOf(1, frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM | FLAG.PRIORITY, 1, payload)),
      );
    });

    test('a bad preface: the connection is closed and nothing is forwarded', async () => {
      const before = backend.arrivals.length;
      const c = await RawH2.open(target(), { preface: false });
      c.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), settingsFrame(), get(1));
      await c.untilClosed();
      assert.equal(backend.arrivals.length, before);
    });

    test('an unknown frame type is ignored and the connection goes on', async () => {
      const o = await outcomeOf(1, frame(0x42, 0, 0, Buffer.from('hi')), get(1));
      assert.equal(o.kind === 'response' && o.status, 200);
    });
  });
}
