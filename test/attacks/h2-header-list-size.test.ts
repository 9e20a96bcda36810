// X05, its HTTP/2 part (nginx 414/400, Envoy 431, HAProxy 400): a header list over the limit, sent in HEADERS +
// CONTINUATION to the h2c and the TLS listener. The limit is `maxHeaderSize` (default 16 KiB) counted as RFC 9113
// §6.5.2 counts a header list (name + value + 32 per field, pseudo-headers included) and advertised as
// SETTINGS_MAX_HEADER_LIST_SIZE; a list at the limit is served, one byte past gets 431 TP_HEADERS_TOO_LARGE
// before the backend is contacted, and a 64 KiB+1 list is cut by the frame guard with GOAWAY(ENHANCE_YOUR_CALM)
// (its block is more than a frame past the limit). Also h2MaxConcurrentStreams, at the limit and one past.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import {
  continuationFrame,
  ERROR,
  FLAG,
  frame,
  FRAME,
  headersFrame,
  RawH2,
  request,
  SETTING,
  type Field,
  type H2Target,
  type Outcome,
} from '../helpers/h2-frames.ts';
import { encodeHeaderBlock } from '../helpers/hpack.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

/** A GET whose header list is exactly `size` bytes (RFC 9113 §6.5.2), split into frames of at most 16,000. */
function requestOfListSize(path: string, size: number): Buffer[] {
  const fields: Field[] = request(path);
  let rest = size - fields.reduce((n, [a, b]) => n + a.length + b.length + 32, 0);
  for (let i = 0; rest > 0; i++) {
    const name = `x-f${String(i).padStart(3, '0')}`;
    const value = 'v'.repeat(Math.max(0, Math.min(4000, rest - name.length - 32)));
    fields.push([name, value]);
    rest -= name.length + value.length + 32;
  }
  assert.equal(rest, 0, 'size not reachable');
  const block = encodeHeaderBlock(fields);
  const frames: Buffer[] = [];
  for (let off = 0; off < block.length; off += 16_000) {
    const part = block.subarray(off, off + 16_000);
    const last = off + 16_000 >= block.length;
    frames.push(
      off === 0
        ? frame(FRAME.HEADERS, (last ? FLAG.END_HEADERS : 0) | FLAG.END_STREAM, 1, part)
        : continuationFrame(1, part, last),
    );
  }
  return frames;
}

describe('header list size', () => {
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

  for (const side of ['h2c', 'tls'] as const) {
    describe(`over ${side}`, () => {
      const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });
      const send = async (path: string, size: number): Promise<Outcome> => {
        const c = await RawH2.open(target());
        c.send(...requestOfListSize(path, size));
        const o = await c.outcome(1);
        c.close();
        return o;
      };

      test('the server advertises SETTINGS_MAX_HEADER_LIST_SIZE = maxHeaderSize (16 KiB)', async () => {
        const c = await RawH2.open(target());
        const s = await c.next((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0, 'SETTINGS');
        c.close();
        const values = new Map<number, number>();
        for (let i = 0; i + 6 <= s!.payload.length; i += 6)
          values.set(s!.payload.readUInt16BE(i), s!.payload.readUInt32BE(i + 2));
        assert.equal(values.get(SETTING.MAX_HEADER_LIST_SIZE), 16_384);
        assert.equal(values.get(SETTING.MAX_CONCURRENT_STREAMS), 128);
      });

      test('a header list of exactly 16 KiB is served', async () => {
        const o = await send(`/public/${side}-at-limit`, 16_384);
        assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o).slice(0, 200));
      });

      test('a header list of 16 KiB + 1 gets 431 problem+json and never reaches the backend', async () => {
        const path = `/public/${side}-past-limit`;
        const o = await send(path, 16_385);
        assert.equal(o.kind === 'response' && o.status, 431, JSON.stringify(o).slice(0, 200));
        if (o.kind === 'response') {
          assert.equal(o.headers.find(([n]) => n === 'content-type')?.[1], 'application/problem+json');
          assert.equal(JSON.parse(o.body.toString()).code, 'TP_HEADERS_TOO_LARGE');
        }
        assert.equal(backend.arrivals.filter((a) => a.url === path).length, 0);
      });

      test('a header list of 64 KiB + 1 is refused (GOAWAY ENHANCE_YOUR_CALM) and never reaches the backend', async () => {
        const path = `/public/${side}-64k`;
        const o = await send(path, 65_537);
        assert.ok(
          (o.kind === 'goaway' && o.code === ERROR.ENHANCE_YOUR_CALM) || (o.kind === 'response' && o.status === 431),
          JSON.stringify(o).slice(0, 200),
        );
        assert.equal(backend.arrivals.filter((a) => a.url === path).length, 0);
      });
    });
  }
});

describe('h2MaxConcurrentStreams: 4', () => {
  let held: ServerResponse[] = [];
  let arrived = 0;
  let onArrival: (() => void) | null = null;
  const backend = createServer((_req: IncomingMessage, res: ServerResponse) => {
    held.push(res);
    arrived++;
    onArrival?.();
  });
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => {
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    const port = (backend.address() as AddressInfo).port;
    gw = await startAttackGateway({ upstream: `http://127.0.0.1:${port}`, limits: 'h2MaxConcurrentStreams: 4' });
  });
  after(async () => {
    for (const r of held) r.destroy();
    await gw.stop();
    backend.close();
  });

  const until = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => arrived >= n && resolve();
      onArrival = check;
      check();
    });

  // §5.1.2: a stream past the advertised limit is a stream error (REFUSED_STREAM) or, as nghttp2 in Node answers
  // it, a connection error (GOAWAY PROTOCOL_ERROR); either way it never reaches the backend.
  test('4 open streams are all forwarded; a 5th is refused and never forwarded', async () => {
    const c = await RawH2.open({ port: gw.http });
    await c.next((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'SETTINGS ACK');
    for (const id of [1, 3, 5, 7]) c.send(headersFrame(id, request(`/public/s${id}`), { endStream: true }));
    await until(4);
    c.send(headersFrame(9, request('/public/s9'), { endStream: true }));
    const o = await c.outcome(9);
    assert.ok(
      (o.kind === 'reset' && o.code === ERROR.REFUSED_STREAM) ||
        (o.kind === 'goaway' && o.code === ERROR.PROTOCOL_ERROR),
      JSON.stringify(o),
    );
    c.close();
    for (const r of held) r.end('ok');
    held = [];
    assert.equal(arrived, 4);
  });
});
