import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { parseConfig } from '../../src/index.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

interface Upstream {
  readonly server: Server;
  readonly url: string;
  /** Headers of every upgrade request the upstream received. */
  readonly upgrades: IncomingHttpHeaders[];
  /** Resolves with the close code and reason the upstream side saw, per connection, in order of connection. */
  readonly closes: Promise<{ code: number; reason: string }>[];
  /** Bytes that reached the upstream on a connection after it refused the upgrade. */
  readonly afterRefusal: Buffer[];
  close(): Promise<void>;
}

/**
 * A real WebSocket server: echoes every message (keeping text/binary), greets with "welcome",
 * closes with a code on "close-me:<code>", sends <n> MiB then closes with 4002 on "big-then-close:<n>",
 * and refuses upgrades under /ws/forbidden (403), /ws/chunked (403, chunked body) and /ws/keepalive (404, connection kept).
 */
async function startUpstream(): Promise<Upstream> {
  const afterRefusal: Buffer[] = [];
  const kept = new Set<Duplex>();
  const upgrades: IncomingHttpHeaders[] = [];
  const closes: Promise<{ code: number; reason: string }>[] = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: 32 * 1024 * 1024 });
  wss.on('headers', (headers) => headers.push('Server: secret-backend/1.0', 'X-Upstream: ws-echo'));
  wss.on('connection', (ws) => {
    closes.push(
      new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    );
    ws.send('welcome');
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const text = isBinary ? '' : data.toString();
      if (text.startsWith('close-me:')) ws.close(Number(text.slice(9)), 'server-bye');
      else if (text.startsWith('big-then-close:')) {
        ws.send(Buffer.alloc(Number(text.slice(15)) * 1024 * 1024, 7));
        ws.close(4002, 'after-big');
      } else ws.send(data, { binary: isBinary });
    });
  });
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    upgrades.push(req.headers);
    if (req.url?.startsWith('/ws/forbidden')) {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden',
      );
      return;
    }
    if (req.url?.startsWith('/ws/chunked')) {
      socket.write('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      socket.end('4\r\nforb\r\n5\r\nidden\r\n0\r\n\r\n');
      return;
    }
    if (req.url?.startsWith('/ws/stream')) {
      // Raw bytes past the 101 (the tunnel does not read frames): 16 MiB, then the upstream ends the connection at once.
      // RFC 6455 §1.3's example key and accept: the gateway tunnels only a 101 that answers the client's key.
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
      );
      socket.end(Buffer.alloc(16 * 1024 * 1024, 9));
      return;
    }
    if (req.url?.startsWith('/ws/keepalive')) {
      // A plain HTTP server that does not upgrade and keeps the connection for the next request.
      kept.add(socket);
      if (head.length > 0) afterRefusal.push(head);
      socket.on('data', (chunk: Buffer) => afterRefusal.push(chunk));
      socket.write('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    upgrades,
    closes,
    afterRefusal,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      for (const socket of kept) socket.destroy();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client whose messages are queued so a test can await them one at a time. */
class Client {
  readonly ws: WebSocket;
  upgradeHeaders: IncomingHttpHeaders = {};
  private readonly queue: { data: Buffer; isBinary: boolean }[] = [];
  private waiter: (() => void) | null = null;

  constructor(url: string, headers?: Record<string, string>) {
    this.ws = new WebSocket(url, { headers, maxPayload: 32 * 1024 * 1024 });
    this.ws.on('upgrade', (res) => (this.upgradeHeaders = res.headers));
    this.ws.on('message', (data: RawData, isBinary: boolean) => {
      this.queue.push({ data: data as Buffer, isBinary });
      this.waiter?.();
    });
  }

  async open(): Promise<this> {
    await once(this.ws, 'open');
    return this;
  }

  async next(timeoutMs = 5000): Promise<{ data: Buffer; isBinary: boolean }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() > deadline) throw new Error('no message arrived');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.queue.shift()!;
  }

  async nextText(): Promise<string> {
    const m = await this.next();
    assert.equal(m.isBinary, false);
    return m.data.toString();
  }
}

/** The rejected handshake's status, headers and body (ws emits 'unexpected-response' for non-101 answers). */
function rejectedHandshake(url: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => reject(new Error('the handshake was expected to fail')));
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() });
        req.destroy();
      });
    });
  });
}

/**
 * Sends an upgrade request with a second request pipelined behind it, then a third once an answer arrived;
 * resolves with what came back and whether the gateway closed the connection.
 */
function refusedUpgradeThenMore(port: number, path: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(finish, 1500);
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n` +
        'GET /ws/pipelined HTTP/1.1\r\nHost: gw.test\r\n\r\n',
    );
    socket.once('data', () =>
      setTimeout(() => socket.writable && socket.write('GET /ws/afterwards HTTP/1.1\r\nHost: gw.test\r\n\r\n'), 100),
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err),
    );
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

function gatewayYaml(upstreamUrl: string, generation = 0): string {
  // Each generation changes the upstream's pool settings, so a reload really replaces (and closes) the old pool.
  return `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  echo:
    targets: [{ url: "${upstreamUrl}" }]
    keepAlive: { connections: ${16 + generation} }
  dead: { targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - { name: ws, match: { path: /ws }, upstream: echo }
  - { name: dead, match: { path: /dead }, upstream: dead }
  - { name: generation, match: { path: /generation }, respond: { status: 200, body: "${generation}" } }
accessLog: { enabled: false }
`;
}

describe('websocket tunnel', () => {
  let upstream: Upstream;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let base: string;
  const clients: Client[] = [];
  const connect = async (path = '/ws/echo', headers?: Record<string, string>) => {
    const client = new Client(`${base}${path}`, headers);
    clients.push(client);
    await client.open();
    assert.equal(await client.nextText(), 'welcome');
    return client;
  };

  before(async () => {
    upstream = await startUpstream();
    gateway = await startGatewayYaml(gatewayYaml(upstream.url));
    base = `ws://127.0.0.1:${gateway.port('web')}`;
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await gateway.stop();
    await upstream.close();
  });

  test('text and binary messages pass both ways, a 1 MB message too', async () => {
    const client = await connect();
    client.ws.send('hello');
    assert.equal(await client.nextText(), 'hello');
    client.ws.send(Buffer.from([0, 1, 2, 255]));
    const binary = await client.next();
    assert.equal(binary.isBinary, true);
    assert.deepEqual([...binary.data], [0, 1, 2, 255]);
    const big = randomBytes(1024 * 1024);
    client.ws.send(big);
    const echoed = await client.next();
    assert.equal(echoed.isBinary, true);
    assert.equal(echoed.data.length, big.length);
    assert.ok(echoed.data.equals(big), 'the 1 MB message came back changed');
    const bigText = 'x'.repeat(1024 * 1024);
    client.ws.send(bigText);
    assert.equal(await client.nextText(), bigText);
    client.ws.close(1000);
    await once(client.ws, 'close');
  });

  test('the client closing with a code closes the upstream side with that code', async () => {
    const index = upstream.closes.length;
    const client = await connect();
    client.ws.close(4000, 'client-bye');
    const [code] = await once(client.ws, 'close');
    assert.equal(code, 4000);
    assert.deepEqual(await upstream.closes[index], { code: 4000, reason: 'client-bye' });
  });

  test('the upstream closing closes the client with the code propagated', async () => {
    const client = await connect();
    const closed = once(client.ws, 'close');
    client.ws.send('close-me:4001');
    const [code, reason] = await closed;
    assert.equal(code, 4001);
    assert.equal(reason.toString(), 'server-bye');
  });

  test('a large message sent just before the upstream closes arrives whole, then the close code', async () => {
    const client = await connect();
    const closed = once(client.ws, 'close');
    // The client reads nothing for a while, so the gateway still holds unsent bytes when the upstream is gone.
    client.ws.pause();
    client.ws.send('big-then-close:16');
    await new Promise((r) => setTimeout(r, 500));
    client.ws.resume();
    const big = await client.next(10_000);
    assert.equal(big.data.length, 16 * 1024 * 1024);
    const [code, reason] = await closed;
    assert.equal(code, 4002);
    assert.equal(reason.toString(), 'after-big');
  });

  test('bytes the upstream sent before ending the tunnel all reach a slow client', async () => {
    const socket = netConnect(gateway.port('web'), '127.0.0.1');
    socket.write(
      'GET /ws/stream HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    socket.pause();
    await new Promise((r) => setTimeout(r, 500));
    let total = 0;
    let first = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      total += c.length;
      if (first.length < 4096) first = Buffer.concat([first, c.subarray(0, 4096)]);
      // Read slowly, so the gateway's buffers toward the client are full when the upstream ends.
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    socket.resume();
    await once(socket, 'end');
    socket.destroy();
    const headLength = first.indexOf('\r\n\r\n') + 4;
    assert.match(first.toString('latin1', 0, headLength), /^HTTP\/1\.1 101 /);
    assert.equal(total - headLength, 16 * 1024 * 1024);
  });

  test("a non-101 answer from the upstream reaches the client with the upstream's status", async () => {
    const r = await rejectedHandshake(`${base}/ws/forbidden`);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'forbidden');
  });

  test('a chunked non-101 answer reaches the client with its body intact', async () => {
    const r = await rejectedHandshake(`${base}/ws/chunked`);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'forbidden');
  });

  test('after a non-101 answer the gateway closes the client connection and passes nothing more upstream', async () => {
    const r = await refusedUpgradeThenMore(gateway.port('web'), '/ws/keepalive');
    assert.match(r.text, /^HTTP\/1\.1 404 /);
    assert.match(r.text, /\r\nconnection: close\r\n/i);
    assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, `more than one answer came back:\n${r.text}`);
    assert.ok(r.closed, 'the client connection was left open');
    assert.equal(
      Buffer.concat(upstream.afterRefusal).toString(),
      '',
      'bytes sent after the refused upgrade reached the upstream',
    );
  });

  test('an upgrade to an unreachable upstream gets a 502 problem+json', async () => {
    const r = await rejectedHandshake(`${base}/dead`);
    assertProblem(r, 502, 'TP_UPSTREAM_UNAVAILABLE');
  });

  test('an upgrade request no route matches gets a 404 problem+json', async () => {
    const r = await rejectedHandshake(`${base}/nowhere`);
    assertProblem(r, 404, 'TP_ROUTE_NOT_FOUND');
  });

  test("the upstream's Server header is hidden on the 101 while other headers pass", async () => {
    const client = await connect();
    assert.equal(client.upgradeHeaders.server, undefined);
    assert.equal(client.upgradeHeaders['x-upstream'], 'ws-echo');
    assert.equal(client.upgradeHeaders.upgrade?.toLowerCase(), 'websocket');
    client.ws.close();
  });

  test('the upstream sees X-Forwarded-For and the request id, which the client gets back', async () => {
    const index = upstream.upgrades.length;
    const client = await connect('/ws/echo', { 'x-request-id': 'ws-test-42' });
    const seen = upstream.upgrades[index]!;
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-request-id'], 'ws-test-42');
    assert.equal(client.upgradeHeaders['x-request-id'], 'ws-test-42');
    const generated = await connect();
    const id = upstream.upgrades[index + 1]!['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    assert.equal(generated.upgradeHeaders['x-request-id'], id);
    client.ws.close();
    generated.ws.close();
  });

  test('an open WebSocket survives three config reloads and keeps passing messages', async () => {
    const client = await connect();
    let closed = false;
    client.ws.once('close', () => (closed = true));
    const port = gateway.port('web');
    for (let generation = 1; generation <= 3; generation++) {
      if (generation === 2) {
        await gateway.runtime.apply(parseConfig(gatewayYaml(upstream.url, generation)));
      } else {
        writeFileSync(gateway.file, gatewayYaml(upstream.url, generation));
        assert.deepEqual(await gateway.reloader!.reload('test'), { ok: true });
      }
      const seen = await fetch(`http://127.0.0.1:${port}/generation`);
      assert.equal(await seen.text(), String(generation), 'the reload did not take effect');
      client.ws.send(`after reload ${generation}`);
      assert.equal(await client.nextText(), `after reload ${generation}`);
      client.ws.send(Buffer.from([generation]));
      assert.deepEqual([...(await client.next()).data], [generation]);
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'the WebSocket was closed by a reload');
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    const fresh = await connect();
    fresh.ws.send('new connection');
    assert.equal(await fresh.nextText(), 'new connection');
    client.ws.close(1000);
    fresh.ws.close(1000);
    await Promise.all([once(client.ws, 'close'), once(fresh.ws, 'close')]);
  });
});
