// H04 (CVE-2023-44487, HTTP/2 rapid reset; Envoy and HAProxy "glitches"): attacker connections loop
// {HEADERS(END_STREAM); RST_STREAM(CANCEL)} while a benign client on its own connection keeps being served.
// Turnpike's frame guard counts RST_STREAM frames before nghttp2 sees them and ends a connection past
// `h2MaxResetsPerSecond` (default 200, tested here at 20 and at the default) with GOAWAY(ENHANCE_YOUR_CALM), so
// the cancelled streams that reach the backend stay bounded. In `npm test` the flood is bounded and asserted by
// counts only; under `npm run attacks -- --full` (100,000 pairs on 10 connections) the benign latency is printed.
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { FULL, scale } from '../helpers/attack-scale.ts';
import { ERROR, headersFrame, RawH2, request, rstFrame, type H2Target } from '../helpers/h2-frames.ts';
import { h2Request } from '../helpers/h2.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

/** Writes up to `pairs` HEADERS+RST_STREAM pairs in batches until the server closes; returns the pairs sent. */
async function flood(c: RawH2, pairs: number, path: string): Promise<number> {
  const batch = 100;
  let stream = 1;
  let sent = 0;
  while (sent < pairs && !c.closed) {
    const frames: Buffer[] = [];
    for (let i = 0; i < batch && sent < pairs; i++, sent++, stream += 2) {
      frames.push(headersFrame(stream, request(path), { endStream: true }), rstFrame(stream, ERROR.CANCEL));
    }
    if (!(await c.write(Buffer.concat(frames)))) break;
  }
  return sent;
}

async function benign(port: number, n: number): Promise<number[]> {
  const session = connect(`http://127.0.0.1:${port}`);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await h2Request(session, { ':path': '/public/benign' });
      times.push(performance.now() - t);
      assert.equal(r.status, 200);
    }
  } finally {
    session.close();
  }
  return times;
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? 0;

describe('with h2MaxResetsPerSecond: 20', () => {
  let backend: RecordingBackend;
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => {
    backend = await startRecordingBackend();
    gw = await startAttackGateway({ upstream: backend.url, limits: 'h2MaxResetsPerSecond: 20' });
  });
  after(async () => {
    await gw.stop();
    await backend.close();
  });

  test('20 resets are allowed; the connection is still served', async () => {
    const c = await RawH2.open({ port: gw.http });
    await flood(c, 20, '/public/at-limit');
    c.send(headersFrame(41, request('/public/after'), { endStream: true }));
    const o = await c.outcome(41);
    c.close();
    assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
  });

  // Resets count in one-second windows (opened by the connection's first control frame): 41 in one write are more
  // than 20 in one window wherever a boundary falls, so a loop stalled after the handshake cannot hide them.
  test('more than 20 resets in one second get GOAWAY(ENHANCE_YOUR_CALM) and the connection closes', async () => {
    const c = await RawH2.open({ port: gw.http });
    await flood(c, 41, '/public/past-limit');
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

  for (const side of ['h2c', 'tls'] as const) {
    test(`over ${side}: attackers get GOAWAY(ENHANCE_YOUR_CALM), few cancelled streams reach the backend, a benign client is served`, async () => {
      const target: H2Target = side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca };
      const base = FULL ? await benign(gw.http, 200) : [];
      const attackers = await Promise.all(Array.from({ length: scale(2, 10) }, () => RawH2.open(target)));
      const path = `/public/${side}-flood`;
      const during = benign(gw.http, scale(5, 200));
      const sent = await Promise.all(attackers.map((c) => flood(c, scale(10_000, 100_000), path)));
      for (const c of attackers) {
        assert.equal(await c.goaway(), ERROR.ENHANCE_YOUR_CALM);
        await c.untilClosed();
      }
      const times = await during;
      const reached = backend.arrivals.filter((a) => a.url === path).length;
      // Each connection passes at most 200 resets (plus the streams still open when it is cut).
      assert.ok(reached <= attackers.length * (200 + 128), `${reached} cancelled requests reached the backend`);
      assert.ok(sent.every((n) => n > 200));
      if (FULL)
        console.log(
          `H04 ${side}: sent ${sent.join('+')} pairs, ${reached} reached the backend, benign p99 ${p99(base).toFixed(1)} ms before, ${p99(times).toFixed(1)} ms during`,
        );
    });
  }
});
