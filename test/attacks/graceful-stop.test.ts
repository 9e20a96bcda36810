// U13 (HAProxy/Envoy drain) and the SIGTERM finding of issue 15: SIGTERM reset connections that arrived around the
// moment the listeners closed (15 resets over 8 SIGTERMs, no balancer in front). Two causes: closing a listening
// socket resets the connections in its accept queue (libuv accepts one per socket and loop turn, so a busy gateway
// has some queued), and the drain ended once no request was in flight, closing connections the kernel had
// accepted whose request had not been read yet. Turnpike now closes each listening socket only after a turn in
// which it accepted nothing, and waits for every accepted connection (up to the header timeout) to send its
// request, which is answered with Connection: close. A real CLI process, SIGTERM, real sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { scale } from '../helpers/attack-scale.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { until } from '../helpers/wait.ts';

let backend: RecordingBackend;
let slowRelease: (() => void)[] = [];

before(async () => {
  backend = await startRecordingBackend((req, res, a) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${a.method} ${a.url} ${a.sha256}`);
    };
    // /slow answers when the test says so: a request in flight across the SIGTERM.
    if (req.url?.startsWith('/slow')) slowRelease.push(answer);
    else answer();
  });
});
after(() => backend.close());

const config = (extra = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, h2c: true }]
limits: { headerTimeout: 3s }
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
shutdown: { drainTimeout: 5s }
${extra}`;

/** Writes a request on a raw socket and resolves with what came back before the close (or the error code). */
function exchange(socket: Socket, path: string): Promise<{ text: string; error: string | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), error }));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
  });
}

/** The exit code of a gateway already sent SIGTERM (a second SIGTERM would kill it: the handler runs once). */
async function exitCode(gw: GatewayProcess): Promise<number | null> {
  if (gw.child.exitCode !== null || gw.child.signalCode !== null) return gw.child.exitCode;
  const [code] = (await once(gw.child, 'exit')) as [number | null];
  return code;
}

const connected = async (port: number): Promise<Socket> => {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
};

test('connections the kernel queued when SIGTERM came are all answered, none reset', async () => {
  const gw = await spawnGateway(config());
  const port = gw.port();
  try {
    // A burst larger than one loop turn accepts (16 sockets x 1 connection), each sending its request at once;
    // SIGTERM as soon as the first handshake completes, so the kernel still holds most of them in accept queues.
    const n = scale(256, 1024);
    let signalled = false;
    const results = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<{ text: string; error: string | null; connected: boolean }>((resolve) => {
            const socket = connect(port, '127.0.0.1');
            const chunks: Buffer[] = [];
            let error: string | null = null;
            let connected = false;
            socket.on('connect', () => {
              connected = true;
              if (!signalled) {
                signalled = true;
                gw.child.kill('SIGTERM');
              }
              socket.write(`GET /burst/${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
            });
            socket.on('data', (c: Buffer) => chunks.push(c));
            socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
            socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), error, connected }));
          }),
      ),
    );
    // A connection the kernel accepted gets an answer; one it refused (after the listeners closed) is clean.
    const lost = results.filter((r) => r.connected && !/^HTTP\/1\.1 200 /.test(r.text));
    const refused = results.filter((r) => !r.connected && r.error === 'ECONNREFUSED').length;
    assert.deepEqual(
      lost.map((r) => r.error ?? r.text.slice(0, 40)),
      [],
      `${lost.length} of ${n} accepted connections got no answer (${refused} refused)`,
    );
    assert.equal(results.filter((r) => !r.connected && r.error !== 'ECONNREFUSED').length, 0);
  } finally {
    assert.equal(await exitCode(gw), 0);
  }
});

test('a connection accepted before SIGTERM whose request comes after it still gets an answer', async () => {
  const gw = await spawnGateway(config());
  const port = gw.port();
  const sockets = await Promise.all(Array.from({ length: 8 }, () => connected(port)));
  gw.child.kill('SIGTERM');
  // Requests are answered with Connection: close once the listening sockets are closed (while they close, a
  // request still gets keep-alive, and its connection is closed when idle: the handover's reason, runtime.ts).
  await until(() => gw.logLines.some((l) => l.includes('"listeners closed"')), 'the gateway to log "listeners closed"');
  const results = await Promise.all(sockets.map((s, i) => exchange(s, `/late/${i}`)));
  for (const r of results) {
    assert.equal(r.error, null);
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    assert.match(r.text, /\r\nconnection: close\r\n/i);
  }
  for (let i = 0; i < 8; i++) assert.ok(backend.arrivals.some((a) => a.url === `/late/${i}`));
  assert.equal(await exitCode(gw), 0);
});

test('a connection that never sends a request is closed at the header timeout, and the gateway exits', async () => {
  const gw = await spawnGateway(config().replace('headerTimeout: 3s', 'headerTimeout: 500ms'));
  const silent = await connected(gw.port());
  // Read what comes (a 408 once the header timeout passes): a paused socket never sees the FIN after it.
  silent.resume();
  const closed = once(silent, 'close');
  assert.equal(await gw.stop(), 0);
  await closed;
});

test('in-flight HTTP/1.1 and HTTP/2 requests finish across SIGTERM; the HTTP/2 client gets GOAWAY', async () => {
  slowRelease = [];
  const gw = await spawnGateway(config());
  const port = gw.port();
  const h1 = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/slow/h1', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
  const session = h2connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const goaway = once(session, 'goaway');
  const stream = session.request({ ':path': '/slow/h2' });
  let h2status = 0;
  let h2body = '';
  stream.on('response', (h) => (h2status = Number(h[':status'])));
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (h2body += c));
  const h2done = once(stream, 'end');
  await until(() => slowRelease.length === 2, 'both slow requests to reach the backend');
  gw.child.kill('SIGTERM');
  await goaway;
  for (const release of slowRelease) release();
  const first = await h1;
  await h2done;
  assert.equal(first.status, 200);
  assert.match(first.body, /^GET \/slow\/h1 /);
  assert.equal(h2status, 200);
  assert.match(h2body, /^GET \/slow\/h2 /);
  session.close();
  assert.equal(await exitCode(gw), 0);
});

// Still failing (todo, so the lead sees it rather than a loosened test): a connection whose handshake completes
// in the last loop turn before a listening socket closes (after the turn's poll saw its queue empty) is reset by
// the kernel. Measured with 2 clients hammering new connections: 14 resets over 10 SIGTERMs before, 2-7 after;
// `node bench/stop-resets.ts turnpike|nginx 20` puts NGINX's graceful stop (SIGQUIT) beside it: 5 resets in 20
// stops (Turnpike 19 in 20 the same day). Closing that window needs the kernel (net.ipv4.tcp_migrate_req=1 with
// another socket left, or an fd handover).
test(
  'several SIGTERMs under a small load of new connections: no reset, no failed request',
  { todo: 'a reset in the last turn before a listening socket closes remains (about 1 in 2 SIGTERMs)' },
  async () => {
    const rounds = scale(4, 8);
    const tally = { ok: 0, refused: 0, other: [] as string[] };
    for (let round = 0; round < rounds; round++) {
      const gw = await spawnGateway(config());
      const port = gw.port();
      let running = true;
      let answered = 0;
      const one = (i: number) =>
        new Promise<void>((resolve) => {
          const req = request({ host: '127.0.0.1', port, path: `/load/${round}/${i}`, agent: false }, (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) (tally.ok++, answered++);
              else tally.other.push(`status ${res.statusCode}`);
              resolve();
            });
            res.on('error', (e: NodeJS.ErrnoException) => (tally.other.push(`response ${e.code}`), resolve()));
          });
          req.on('error', (e: NodeJS.ErrnoException) => {
            // Refused: nothing was sent, the client knows it may try elsewhere. Anything else lost a request.
            if (e.code === 'ECONNREFUSED') tally.refused++;
            else tally.other.push(e.code ?? e.message);
            running = false;
            resolve();
          });
          req.end();
        });
      let seq = 0;
      const clients = Array.from({ length: 2 }, async () => {
        while (running) await one(seq++);
      });
      await until(() => answered >= 100, 'a hundred answers before the SIGTERM');
      const code = await gw.stop();
      running = false;
      await Promise.all(clients);
      assert.equal(code, 0);
    }
    assert.deepEqual(tally.other, [], `ok ${tally.ok}, refused ${tally.refused}`);
  },
);
