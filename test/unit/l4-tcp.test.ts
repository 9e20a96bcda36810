import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { compileServerNames, readClientHello } from '../../src/l4/client-hello.ts';
import {
  TcpProxy,
  type L4Picker,
  type L4Target,
  type TcpProxyOptions,
  type TcpSessionLog,
} from '../../src/l4/tcp-proxy.ts';
import { closedPort } from '../helpers/ports.ts';

const MB = 1024 * 1024;

function target(port: number, name = `127.0.0.1:${port}`): L4Target {
  return { key: name, host: '127.0.0.1', port, active: 0 };
}

/** Round robin in list order; like the HTTP pools, `avoid` is skipped unless it is the only target. */
function roundRobin(targets: L4Target[]): L4Picker & { failures: string[] } {
  let next = 0;
  const failures: string[] = [];
  return {
    failures,
    pick(_ip, avoid) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[next++ % targets.length]!;
        if (t !== avoid) return t;
      }
      return targets[0];
    },
    observe(t, _ms, failed) {
      if (failed) failures.push(t.key);
    },
  };
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * A port whose connects hang: a listener (backlog 1) in a worker whose event loop is blocked, so nothing is
 * accepted; two connections fill its accept queue and the kernel drops later SYNs.
 */
async function blackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const server = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.once('message', (flag) => Atomics.wait(new Int32Array(flag), 0, 0));
       parentPort.postMessage(server.address().port);
     });`,
    { eval: true },
  );
  const [port] = (await once(worker, 'message')) as [number];
  const flag = new SharedArrayBuffer(4);
  worker.postMessage(flag);
  const fillers = [0, 1].map(() => netConnect({ port, host: '127.0.0.1' }));
  await Promise.all(fillers.map((f) => once(f, 'connect')));
  return {
    port,
    close: async () => {
      for (const f of fillers) f.destroy();
      Atomics.store(new Int32Array(flag), 0, 1);
      Atomics.notify(new Int32Array(flag), 0);
      await worker.terminate();
    },
  };
}

/** A proxy listener whose sessions' logs arrive in order through `nextLog()`. */
async function proxyListener(picker: L4Picker, options: Omit<TcpProxyOptions, 'onLog'>) {
  const proxy = new TcpProxy();
  const logs: TcpSessionLog[] = [];
  let waiting: ((l: TcpSessionLog) => void) | null = null;
  const onLog = (l: TcpSessionLog) => (waiting ? (waiting(l), (waiting = null)) : logs.push(l));
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) =>
    proxy.handle(s, picker, { ...options, onLog }),
  );
  const port = await listen(server);
  return {
    proxy,
    port,
    nextLog: () =>
      logs.length > 0 ? Promise.resolve(logs.shift()!) : new Promise<TcpSessionLog>((r) => (waiting = r)),
    close: () => {
      proxy.closeAll();
      server.close();
    },
  };
}

/**
 * Fast deterministic bytes: chunk i is a 64 KiB window of one xorshift32 block at an offset that moves by a
 * prime stride, so consecutive chunks differ (a lost, repeated or reordered chunk changes the hash) and no byte
 * is generated per chunk. The windows are views of a block nobody writes to, so they are written as they are.
 */
const CHUNK = 64 * 1024;
const POOL = (() => {
  const words = new Uint32Array((1024 * 1024 + CHUNK) / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer);
})();

function generator(seed: number) {
  let i = seed;
  return (size: number): Buffer => {
    const at = (i++ * 7919) % (1024 * 1024);
    return POOL.subarray(at, at + size);
  };
}

/** Writes `total` bytes with backpressure, ends, and returns their SHA-256. */
async function sendStream(socket: Socket, seed: number, total: number): Promise<string> {
  const next = generator(seed);
  const hash = createHash('sha256');
  for (let sent = 0; sent < total;) {
    const chunk = next(Math.min(CHUNK, total - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  return hash.digest('hex');
}

/** Hashes everything read until the peer's end. */
function receiveStream(socket: Socket): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    socket.on('end', () => resolve({ hash: hash.digest('hex'), bytes }));
    socket.on('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  socket.on('error', () => undefined);
  return socket.destroyed ? Promise.resolve() : once(socket, 'close').then(() => undefined);
}

describe('TCP proxy', () => {
  const servers: Server[] = [];
  let echoPort: number;
  const hashResults: Promise<{ received: { hash: string; bytes: number }; sent: string }>[] = [];
  let hashPort: number;
  before(async () => {
    // Echo server that, on the client's end, answers what it got and ends too (half-close both ways).
    const echo = createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => (s.write(c), got.push(c)));
      s.on('end', () => s.end(`|reply:${Buffer.concat(got).toString()}`));
      s.on('error', () => undefined);
    });
    echoPort = await listen(echo);
    const hashServer = createServer({ allowHalfOpen: true }, (s) => {
      hashResults.push(
        Promise.all([receiveStream(s), sendStream(s, 0xbeef, 100 * MB)]).then(([received, sent]) => ({
          received,
          sent,
        })),
      );
    });
    hashPort = await listen(hashServer);
    servers.push(echo, hashServer);
  });
  after(() => {
    for (const s of servers) s.close();
  });

  /** Streams 100 MB each way at once through `port`; checks both hashes; returns the seconds taken. */
  async function stream100(port: number): Promise<number> {
    const client = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(client, 'connect');
    const started = performance.now();
    const [sentHash, received] = await Promise.all([sendStream(client, 0x1234, 100 * MB), receiveStream(client)]);
    const seconds = (performance.now() - started) / 1000;
    const server = await hashResults.shift()!;
    assert.equal(server.received.hash, sentHash, 'client → target hash');
    assert.equal(server.received.bytes, 100 * MB);
    assert.equal(received.hash, server.sent, 'target → client hash');
    assert.equal(received.bytes, 100 * MB);
    return seconds;
  }

  test('100 MB each way arrive intact (SHA-256 on both ends), with backpressure', async (t) => {
    const t1 = target(hashPort);
    const l = await proxyListener(roundRobin([t1]), { connectTimeout: 2000, idleTimeout: 10_000 });
    const direct = await stream100(hashPort); // the same work without the proxy, for scale
    const seconds = await stream100(l.port);
    const log = await l.nextLog();
    assert.equal(log.end, 'closed');
    assert.equal(log.bytesIn, 100 * MB);
    assert.equal(log.bytesOut, 100 * MB);
    assert.equal(t1.active, 0);
    const rate = (s: number) => `${s.toFixed(2)} s, ${(200 / s).toFixed(0)} MB/s`;
    t.diagnostic(
      `100 MB each way at once, all in this process (4 SHA-256 streams): through the proxy ${rate(seconds)}; direct ${rate(direct)}`,
    );
    l.close();
  });

  test('half-close: the client ends its write side and still receives the reply', async () => {
    const t1 = target(echoPort);
    const l = await proxyListener(roundRobin([t1]), { connectTimeout: 2000, idleTimeout: 10_000 });
    const client = netConnect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true });
    const body = receiveStream(client);
    let text = '';
    client.on('data', (c: Buffer) => (text += c.toString()));
    client.end('hello');
    await body;
    assert.equal(text, 'hello|reply:hello');
    const log = await l.nextLog();
    assert.equal(log.end, 'closed');
    assert.equal(log.bytesIn, 5);
    assert.equal(log.bytesOut, text.length);
    assert.equal(t1.active, 0);
    l.close();
  });

  test('the idle timeout closes both sides when no byte flows', async (t) => {
    let backendClosed!: Promise<void>;
    const silent = createServer((s) => {
      s.resume(); // reads (so it sees the end) but never answers
      backendClosed = closed(s);
    });
    servers.push(silent);
    const t1 = target(await listen(silent));
    const l = await proxyListener(roundRobin([t1]), { connectTimeout: 2000, idleTimeout: 200 });
    const client = netConnect({ port: l.port, host: '127.0.0.1' });
    const started = performance.now();
    client.write('one byte then nothing');
    await closed(client);
    const waited = performance.now() - started;
    await backendClosed;
    const log = await l.nextLog();
    assert.equal(log.end, 'idle-timeout');
    assert.ok(waited >= 190, `closed after ${waited} ms`);
    assert.equal(t1.active, 0);
    t.diagnostic(`idle timeout 200 ms: closed after ${waited.toFixed(0)} ms`);
    l.close();
  });

  test('a connect failure is retried on the other target', async () => {
    const dead = target(await closedPort(), 'dead');
    const alive = target(echoPort, 'alive');
    const picker = roundRobin([dead, alive]);
    const l = await proxyListener(picker, { connectTimeout: 2000, idleTimeout: 10_000 });
    const client = netConnect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    client.on('data', (c: Buffer) => (text += c.toString()));
    client.end('ping');
    await receiveStream(client);
    assert.equal(text, 'ping|reply:ping');
    const log = await l.nextLog();
    assert.equal(log.target, 'alive');
    assert.equal(log.attempts, 2);
    assert.deepEqual(picker.failures, ['dead']);
    assert.equal(dead.active + alive.active, 0);
    l.close();
  });

  test('a connect that hangs times out (connectTimeout) and goes to the other target', async (t) => {
    const hole = await blackHole();
    try {
      const stuck = target(hole.port, 'stuck');
      const picker = roundRobin([stuck, target(echoPort, 'alive')]);
      const l = await proxyListener(picker, { connectTimeout: 200, idleTimeout: 10_000 });
      const client = netConnect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true });
      let text = '';
      client.on('data', (c: Buffer) => (text += c.toString()));
      client.end('late');
      await receiveStream(client);
      assert.equal(text, 'late|reply:late');
      const log = await l.nextLog();
      assert.deepEqual([log.target, log.attempts, picker.failures], ['alive', 2, ['stuck']]);
      assert.equal(stuck.active, 0);
      t.diagnostic(`connect timeout 200 ms: answered after ${log.durationMs.toFixed(0)} ms`);
      l.close();

      const only = await proxyListener(roundRobin([stuck]), { connectTimeout: 100, idleTimeout: 10_000, retries: 0 });
      await closed(netConnect({ port: only.port, host: '127.0.0.1' }));
      const failed = await only.nextLog();
      assert.deepEqual([failed.end, failed.errorCode, failed.attempts], ['connect-failed', 'TP_UPSTREAM_TIMEOUT', 1]);
      only.close();
    } finally {
      await hole.close();
    }
  });

  test('when every target refuses, the client is closed (connect-failed, TP_UPSTREAM_UNAVAILABLE)', async () => {
    const a = target(await closedPort(), 'a');
    const b = target(await closedPort(), 'b');
    const l = await proxyListener(roundRobin([a, b]), { connectTimeout: 2000, idleTimeout: 10_000, retries: 1 });
    const client = netConnect({ port: l.port, host: '127.0.0.1' });
    client.write('anyone?');
    let got = 0;
    client.on('data', (c: Buffer) => (got += c.length));
    await closed(client);
    assert.equal(got, 0);
    const log = await l.nextLog();
    assert.equal(log.end, 'connect-failed');
    assert.equal(log.errorCode, 'TP_UPSTREAM_UNAVAILABLE');
    assert.equal(log.attempts, 2);
    assert.equal(a.active + b.active, 0);
    l.close();
  });

  test('a target reset tears the client connection down', async () => {
    const resetting = createServer((s) => s.once('data', () => s.resetAndDestroy()));
    servers.push(resetting);
    const t1 = target(await listen(resetting));
    const l = await proxyListener(roundRobin([t1]), { connectTimeout: 2000, idleTimeout: 10_000 });
    const client = netConnect({ port: l.port, host: '127.0.0.1' });
    client.write('boom');
    await closed(client);
    const log = await l.nextLog();
    assert.equal(log.end, 'upstream-error');
    assert.equal(log.errorCode, 'TP_UPSTREAM_RESET');
    assert.equal(t1.active, 0);
    assert.equal(l.proxy.size, 0);
    l.close();
  });

  test('whenIdle waits for open sessions; closeAll tears them down', async () => {
    const t1 = target(echoPort);
    const l = await proxyListener(roundRobin([t1]), { connectTimeout: 2000, idleTimeout: 10_000 });
    const clients = [0, 1].map(() => netConnect({ port: l.port, host: '127.0.0.1' }));
    await Promise.all(clients.map(async (c) => (c.write('x'), await once(c, 'data'))));
    assert.equal(l.proxy.size, 2);
    assert.equal(t1.active, 2);
    let drained = false;
    const idle = l.proxy.whenIdle().then(() => (drained = true));
    clients[0]!.destroy();
    await l.nextLog();
    assert.equal(drained, false);
    l.proxy.closeAll();
    await idle;
    assert.equal((await l.nextLog()).end, 'shutdown');
    await closed(clients[1]!);
    assert.equal(t1.active, 0);
    l.close();
  });
});

describe('SNI routing (TLS passed through, not terminated)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-sni-'));
  const certs: Record<string, { key: Buffer; cert: Buffer }> = {};
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  let refusedPort: number;
  let catchAllPort: number;

  /** Self-signed certificate for `name` (a SAN, so hostname verification checks we reached the right server). */
  function makeCert(name: string): { key: Buffer; cert: Buffer } {
    const file = name.replace('*', 'star');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        join(dir, `${file}.key`),
        '-out',
        join(dir, `${file}.crt`),
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, `${file}.key`)), cert: readFileSync(join(dir, `${file}.crt`)) };
  }

  /** A raw TCP listener: peeks the ClientHello, picks the target by name, and splices (replaying the hello). */
  async function sniListener(entries: { serverName: string; value: string }[]): Promise<number> {
    const match = compileServerNames(entries);
    const proxy = new TcpProxy();
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      readClientHello(socket, 5000).then(
        (hello) => {
          const name = match(hello.serverName);
          if (name === undefined) return socket.destroy();
          const t = target(ports[name]!, name);
          proxy.handle(
            socket,
            { pick: () => t },
            { connectTimeout: 2000, idleTimeout: 10_000, initialData: hello.buffered },
          );
        },
        () => socket.destroy(),
      );
    });
    servers.push(server);
    return listen(server);
  }

  before(async () => {
    for (const [id, name] of [
      ['A', 'a.example.com'],
      ['B', '*.b.example.com'],
      ['C', 'default.example.com'],
    ] as const) {
      certs[id] = makeCert(name);
      const tls = createTlsServer({ ...certs[id] }, (s) => s.end(`hello from ${id}`));
      tls.on('tlsClientError', () => undefined);
      servers.push(tls);
      ports[id] = await listen(tls);
    }
    const named = [
      { serverName: 'a.example.com', value: 'A' },
      { serverName: '*.b.example.com', value: 'B' },
    ];
    refusedPort = await sniListener(named);
    catchAllPort = await sniListener([...named, { serverName: '*', value: 'C' }]);
  });
  after(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects with `servername`, verifying the certificate against all three; resolves the server's greeting. */
  function ask(port: number, servername: string | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = tlsConnect({
        port,
        host: '127.0.0.1',
        ca: Object.values(certs).map((c) => c.cert),
        ...(servername === undefined ? { checkServerIdentity: () => undefined } : { servername }),
      });
      let text = '';
      let secured = false;
      socket.on('secureConnect', () => (secured = true));
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('error', reject);
      socket.on('close', () => (secured ? resolve(text) : reject(new Error('closed before the TLS handshake'))));
    });
  }

  test('a.example.com reaches A and x.b.example.com reaches B (one-label wildcard)', async () => {
    assert.equal(await ask(refusedPort, 'a.example.com'), 'hello from A');
    assert.equal(await ask(refusedPort, 'x.b.example.com'), 'hello from B');
  });

  test('an unknown name is refused: the connection closes before the handshake', async () => {
    await assert.rejects(ask(refusedPort, 'unknown.example.com'));
    await assert.rejects(ask(refusedPort, 'y.x.b.example.com'));
  });

  test('the * entry takes unknown names and hellos without SNI', async () => {
    assert.equal(await ask(catchAllPort, 'a.example.com'), 'hello from A');
    assert.equal(await ask(catchAllPort, 'default.example.com'), 'hello from C');
    assert.equal(await ask(catchAllPort, undefined), 'hello from C');
  });
});
