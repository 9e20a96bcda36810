// H08 (Envoy buffer limits and stream_idle_timeout): a client that sets SETTINGS_INITIAL_WINDOW_SIZE 0, asks for a
// big response and never sends WINDOW_UPDATE, over h2c and TLS. Turnpike resets such a stream with
// RST_STREAM(CANCEL) once nothing has moved on it for `h2StreamIdleTimeout` (default 60 s; 500 ms here), which aborts
// the upstream request; meanwhile the upstream response is read only as fast as the client takes it
// (backpressure), so what the backend managed to write stays a small, bounded part of the body.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { ERROR, headersFrame, RawH2, request, SETTING, type H2Target } from '../helpers/h2-frames.ts';

const TOTAL = scale(64, 100) * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

interface Served {
  written: number;
  aborted: boolean;
  done: Promise<void>;
}
const served = new Map<string, Served>();

/** Streams `size` bytes (query ?size=), writing only when the socket drains; records how far it got. */
const backend = createServer((req, res: ServerResponse) => {
  const size = Number(new URL(req.url!, 'http://x').searchParams.get('size') ?? TOTAL);
  let resolve!: () => void;
  const s: Served = { written: 0, aborted: false, done: new Promise((r) => (resolve = r)) };
  served.set(new URL(req.url!, 'http://x').pathname, s);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  const pump = (): void => {
    while (s.written < size) {
      const n = Math.min(CHUNK.length, size - s.written);
      s.written += n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  res.on('close', () => {
    s.aborted = !res.writableFinished;
    resolve();
  });
  pump();
});

let gw: Awaited<ReturnType<typeof startAttackGateway>>;
before(async () => {
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const port = (backend.address() as AddressInfo).port;
  gw = await startAttackGateway({ upstream: `http://127.0.0.1:${port}`, limits: 'h2StreamIdleTimeout: 500ms' });
});
after(async () => {
  await gw.stop();
  backend.closeAllConnections();
  backend.close();
});

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });

    test('a stream held at window 0 is reset at the idle timeout, and the upstream request is aborted', async () => {
      const path = `/public/${side}-zero-window`;
      const c = await RawH2.open(target(), { settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]] });
      c.send(headersFrame(1, request(path), { endStream: true }));
      const o = await c.outcome(1, 10_000);
      assert.deepEqual(o, { kind: 'reset', code: ERROR.CANCEL });
      const s = served.get(path)!;
      await s.done;
      assert.equal(s.aborted, true, 'the upstream response was not aborted');
      // Backpressure: the backend got no further than the buffers between it and the stalled client.
      assert.ok(s.written <= 16 * 1024 * 1024, `the backend wrote ${s.written} of ${TOTAL} bytes`);
      // The connection itself stays usable.
      c.send(headersFrame(3, request('/public/ok?size=10'), { endStream: true }));
      c.close();
    });

    test('a client that reads gets the whole body', async () => {
      const size = 4 * 1024 * 1024;
      const url = side === 'h2c' ? `http://127.0.0.1:${gw.http}` : `https://localhost:${gw.https}`;
      const session = connect(url, side === 'tls' ? { ca: gw.ca } : {});
      const req = session.request({ ':path': `/public/${side}-reader?size=${size}` });
      let got = 0;
      req.on('data', (d: Buffer) => (got += d.length));
      await once(req, 'end');
      session.close();
      assert.equal(got, size);
    });
  });
}
