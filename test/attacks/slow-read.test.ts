// B04 (nginx `send_timeout`; Envoy's 32 KiB per-connection buffers): slow read, clients that ask for a big response
// and do not read it. The forwarder pauses reading from the upstream whenever a write to the client is refused
// (backpressure), so what the gateway holds per connection stays at a socket buffer's worth; `limits.sendTimeout`
// (60 s by default, NGINX's value; here 1 s) is how long a response may wait for the client to read: past it the
// client connection is cut (its head is out: no status can be sent) and the upstream request aborted, so the backend
// connection is released. HTTP/2 streams whose flow-control window stays at 0 are cut the same way.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createHash } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { openClient, openFds, type RawClient } from '../helpers/slow-clients.ts';
import { until } from '../helpers/wait.ts';

const BIG = scale(64, 256) * 1024 * 1024;
// Each non-reading client parks ~10 MB in loopback kernel buffers before backpressure reaches the gateway (measured:
// the backend had written 9 MiB when the first case was cut), so the bounded form keeps to 20 of them.
const READERS = scale(20, 1000);
const CHUNK = Buffer.alloc(1024 * 1024, 0x62);

/** What the backend did with each big response, by URL. */
const sent = new Map<string, { written: number; finished: boolean; aborted: boolean }>();

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend((req, res) => {
    const state = { written: 0, finished: false, aborted: false };
    sent.set(req.url!, state);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
    res.on('close', () => (state.aborted = !res.writableFinished));
    res.on('finish', () => (state.finished = true));
    const pump = () => {
      while (state.written < BIG && !res.destroyed) {
        state.written += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      if (state.written >= BIG) res.end();
    };
    pump();
  });
  gw = await startAttackGateway({ upstream: backend.url, limits: `sendTimeout: ${scale('1s', '10s')}` });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

/** The largest number of bytes queued in this process on the gateway's side of connections to `port`. */
function watchQueued(port: number): { max(): number; stop(): void } {
  let max = 0;
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    if (socket.localPort !== port) return;
    const write = socket.write;
    socket.write = function (this: Socket, ...args: unknown[]): boolean {
      const more = (write as (...a: unknown[]) => boolean).apply(this, args);
      if (this.writableLength > max) max = this.writableLength;
      return more;
    } as Socket['write'];
  };
  subscribe('net.server.socket', onSocket);
  return { max: () => max, stop: () => unsubscribe('net.server.socket', onSocket) };
}

async function slowReader(path: string): Promise<RawClient> {
  const c = await openClient(gw.http);
  c.socket.pause(); // reads nothing: what arrives stays in the kernel's receive buffer
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
  return c;
}

test('a client that does not read a big response is cut at sendTimeout; the upstream request is aborted and the gateway buffered little', async () => {
  const queued = watchQueued(gw.http);
  try {
    const c = await slowReader('/public/big-1');
    await until(() => sent.get('/public/big-1')?.aborted, 'the backend response to be aborted', 30_000);
    const state = sent.get('/public/big-1')!;
    assert.equal(state.finished, false);
    assert.ok(state.written < BIG, `the backend wrote ${state.written} of ${BIG}`);
    // Bounded buffering: the gateway paused the upstream instead of queueing its response for the client.
    assert.ok(queued.max() <= 1024 * 1024, `gateway queued up to ${queued.max()} bytes for the client`);
    c.socket.resume();
    const text = await c.done;
    assert.ok(text.length < BIG, 'the client never got the whole response');
    assert.match(text, /^HTTP\/1\.1 200 /);
  } finally {
    queued.stop();
  }
});

test('a client that pauses for less than sendTimeout and then reads gets the whole response', async () => {
  const c = await slowReader('/public/big-paused');
  await until(() => (sent.get('/public/big-paused')?.written ?? 0) > 0, 'the backend to start');
  // The reader's own pace (the case itself): a pause of a fifth of the timeout, then it reads.
  await new Promise((resolve) => setTimeout(resolve, scale(200, 2000)));
  const hash = createHash('sha256');
  let bytes = 0;
  let head = true;
  c.socket.on('data', (d: Buffer) => {
    if (head) {
      const end = d.indexOf('\r\n\r\n');
      d = d.subarray(end + 4);
      head = false;
    }
    bytes += d.length;
    hash.update(d);
  });
  c.socket.resume();
  await until(() => bytes >= BIG, `the whole body (${bytes} of ${BIG})`, 30_000);
  assert.equal(bytes, BIG);
  assert.equal(sent.get('/public/big-paused')!.finished, true);
  c.socket.destroy();
});

test(`${READERS} slow readers at once: all cut, every upstream request aborted, descriptors return`, async () => {
  const fdsBefore = openFds();
  const clients: RawClient[] = [];
  for (let i = 0; i < READERS; i++) clients.push(await slowReader(`/public/big-many-${i}`));
  await until(
    () => [...Array(READERS).keys()].every((i) => sent.get(`/public/big-many-${i}`)?.aborted),
    'every backend response aborted',
    60_000,
  );
  for (const c of clients) c.socket.destroy();
  await until(() => openFds() <= fdsBefore + 10, `open fds back near ${fdsBefore} (now ${openFds()})`);
});

test('HTTP/2: a stream whose window stays at 0 is reset at sendTimeout and the upstream request aborted', async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`, { settings: { initialWindowSize: 0 } });
  try {
    const req = session.request({ ':path': '/public/big-h2' });
    req.on('error', () => {});
    const closed = new Promise((resolve) => req.once('close', resolve));
    await closed;
    assert.notEqual(req.rstCode, 0);
    await until(() => sent.get('/public/big-h2')?.aborted, 'the backend response to be aborted');
    assert.equal(sent.get('/public/big-h2')!.finished, false);
  } finally {
    session.destroy();
  }
});
