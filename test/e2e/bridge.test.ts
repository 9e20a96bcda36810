// The bridge terminal both ways, with `ws` on real sockets: an upstream WebSocket as Server-Sent Events (to: sse)
// and WebSocket clients in front of an HTTP API (to: http). The ticker and orders-ws routes, verbatim.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { RequestContext } from '../../src/request-context.ts';
import { nextEvent } from '../helpers/events.ts';
import { assertProblem } from '../helpers/problem.ts';
import { request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const CHUNK = 64 * 1024;
const FLOOD_LIMIT = 64 * 1024 * 1024;

interface Handshake {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly ws: WebSocket;
  readonly closed: Promise<number>;
}

/** The WebSocket upstream: /ws greets with three messages; /flood sends 64 KiB messages for the backpressure test. */
async function startTicker(): Promise<{ server: Server; url: string; handshakes: Handshake[] }> {
  const handshakes: Handshake[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    if (!req.url!.startsWith('/ws') && !req.url!.startsWith('/flood')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      handshakes.push({ url: req.url!, headers: req.headers, ws, closed });
      if (req.url!.startsWith('/ws')) {
        ws.send('tick 1');
        ws.send('line a\nline b\r\nline c');
        ws.send(Buffer.from([1, 2, 3]), { binary: true });
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handshakes };
}

interface SseClient {
  readonly res: IncomingMessage;
  readonly events: { event: string; data: string }[];
  readonly ended: Promise<void>;
  close(): void;
}

/** A raw SSE reader: every event's `event:` and its `data:` lines joined with \n, as EventSource does. */
function openSse(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: { event: string; data: string }[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
          events.push({ event, data: data.join('\n') });
        }
      });
      res.on('error', () => undefined);
      const ended = new Promise<void>((r) => res.once('end', r));
      resolve({ res, events, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** A WebSocket client that queues what it receives. */
async function openWs(url: string): Promise<{ ws: WebSocket; next(): Promise<{ data: Buffer; isBinary: boolean }> }> {
  const ws = new WebSocket(url);
  const queue: { data: Buffer; isBinary: boolean }[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: RawData, isBinary: boolean) => {
    queue.push({ data: data as Buffer, isBinary });
    wake?.();
  });
  await once(ws, 'open');
  return {
    ws,
    async next() {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift()!;
    },
  };
}

describe('bridge terminal', () => {
  let ticker: Awaited<ReturnType<typeof startTicker>>;
  let orders: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;
  /** What the orders API received, and the most POSTs it had in flight at once. */
  const received: { path: string; type: string; body: string; requestId: string }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    ticker = await startTicker();
    orders = await startBackend((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        received.push({
          path: req.url!,
          type: req.headers['content-type'] ?? '',
          body,
          requestId: String(req.headers['x-request-id']),
        });
        // Answered on the next turn, so a gateway that did not wait would have two in flight.
        setImmediate(() => {
          inFlight--;
          if (req.url === '/big') return res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(4096));
          if (req.url === '/png')
            return res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from([137, 80]));
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n: received.length, body }));
        });
      });
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  ticker-ws: { targets: [{ url: "${ticker.url}" }] }
  orders: { targets: [{ url: "${orders.url}" }] }
  dead: { targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - name: ticker                               # an upstream WebSocket as Server-Sent Events
    match: { path: /ticker }
    bridge: { upstream: ticker-ws, to: sse, path: /ws }
  - name: orders-ws                            # WebSocket clients in front of an HTTP API
    match: { path: /orders-ws }
    bridge: { upstream: orders, to: http, path: /orders }
  - { name: flood, match: { path: /flood }, bridge: { upstream: ticker-ws, to: sse, path: /flood } }
  - { name: no-ws, match: { path: /no-ws }, bridge: { upstream: ticker-ws, to: sse, path: /missing } }
  - { name: dead-sse, match: { path: /dead-sse }, bridge: { upstream: dead, to: sse, path: /ws } }
  - { name: dead-ws, match: { path: /dead-ws }, bridge: { upstream: dead, to: http, path: /orders } }
  - name: small
    match: { path: /small }
    limits: { maxBodySize: 1kb }
    bridge: { upstream: orders, to: http, path: /big }
  - { name: png, match: { path: /png }, bridge: { upstream: orders, to: http, path: /png, contentType: text/csv } }
shutdown: { drainTimeout: 1s }
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    ticker.server.closeAllConnections();
    ticker.server.close();
    await orders.close();
  });

  test('to: sse streams each upstream message as an event, multi-line safe, and ends with the upstream', async () => {
    const sse = await openSse(port, '/ticker?symbol=ACME', { 'x-request-id': 'sse-1' });
    assert.equal(sse.res.statusCode, 200);
    assert.match(String(sse.res.headers['content-type']), /^text\/event-stream/);
    assert.match(String(sse.res.headers['cache-control']), /no-transform/);
    await until(() => sse.events.length === 3, 'three events');
    assert.deepEqual(sse.events, [
      { event: 'message', data: 'tick 1' },
      { event: 'message', data: 'line a\nline b\nline c' },
      { event: 'binary', data: Buffer.from([1, 2, 3]).toString('base64') },
    ]);
    const up = ticker.handshakes.at(-1)!;
    assert.equal(up.url, '/ws?symbol=ACME');
    assert.equal(up.headers['x-request-id'], 'sse-1');
    assert.equal(up.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(up.headers.accept, undefined);
    up.ws.close(1000);
    await sse.ended; // the upstream closing ends the client's stream
  });

  test('to: sse closes the upstream WebSocket when the client leaves', async () => {
    const sse = await openSse(port, '/ticker');
    await until(() => sse.events.length === 3, 'three events');
    const up = ticker.handshakes.at(-1)!;
    sse.close();
    assert.equal(await up.closed, 1001);
  });

  test('to: sse refuses what it cannot stream, naming no upstream address', async () => {
    assertProblem(await request(port, '/no-ws'), 502, 'TP_UPSTREAM_BAD_RESPONSE', [ticker.url]);
    assertProblem(await request(port, '/dead-sse'), 502, 'TP_UPSTREAM_UNAVAILABLE', ['127.0.0.1:1']);
    const post = await request(port, '/ticker', { method: 'POST', body: 'x' });
    assertProblem(post, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.equal(post.headers.allow, 'GET');
    assertProblem(
      await request(port, '/ticker', { headers: { accept: 'application/json' } }),
      406,
      'TP_NOT_ACCEPTABLE',
    );
  });

  test('to: sse pauses the upstream for a slow client: the gateway buffers a bounded amount, loses nothing', async () => {
    const started = nextEvent(
      'turnpike:request:start',
      gateway.runtime.gateway,
      (e) => (e.ctx as RequestContext).path === '/flood',
      'the flood request',
    );
    const sse = await openSse(port, '/flood');
    const ctx = (await started).ctx as RequestContext;
    sse.res.pause(); // a client that reads nothing
    const up = ticker.handshakes.at(-1)!;
    // The upstream sends as fast as its socket takes, yielding so the gateway (in this process) runs, until
    // 4 MiB wait in its own buffer: the gateway stopped reading. Past FLOOD_LIMIT (or 8 MiB held for the client)
    // the gateway read on regardless.
    let sent = 0;
    let maxGatewayBuffered = 0;
    const message = 'y'.repeat(CHUNK);
    while (
      up.ws.bufferedAmount < 4 * 1024 * 1024 &&
      sent * CHUNK < FLOOD_LIMIT &&
      maxGatewayBuffered < 8 * 1024 * 1024
    ) {
      up.ws.send(message);
      sent++;
      maxGatewayBuffered = Math.max(maxGatewayBuffered, ctx.res.writableLength);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(sent * CHUNK < FLOOD_LIMIT, `the upstream sent ${sent} messages without push-back`);
    // Node's write buffer (16 KiB) plus what one socket read of the upstream held: far below the flood.
    assert.ok(maxGatewayBuffered < 1024 * 1024, `the gateway buffered ${maxGatewayBuffered} bytes for the client`);
    sse.res.resume();
    up.ws.close(1000);
    await sse.ended;
    assert.equal(sse.events.length, sent, 'every message arrived once the client read');
    assert.ok(sse.events.every((e) => e.data.length === CHUNK));
  });

  test('to: http POSTs each message in order, one at a time, and sends each answer back', async () => {
    received.length = 0;
    maxInFlight = 0;
    const client = await openWs(`ws://127.0.0.1:${port}/orders-ws`);
    client.ws.send('{"order": 1}');
    client.ws.send('plain text');
    client.ws.send(Buffer.from([9, 8]));
    const answers = [await client.next(), await client.next(), await client.next()];
    assert.deepEqual(
      answers.map((a) => [a.isBinary, JSON.parse(a.data.toString()).n]),
      [
        [false, 1],
        [false, 2],
        [false, 3],
      ],
    );
    assert.deepEqual(
      received.map((r) => [r.path, r.type, r.body]),
      [
        ['/orders', 'application/json', '{"order": 1}'],
        ['/orders', 'text/plain; charset=utf-8', 'plain text'],
        ['/orders', 'application/octet-stream', '\t\b'],
      ],
    );
    assert.equal(maxInFlight, 1, 'the POSTs overlapped: answers could come back out of order');
    assert.ok(received.every((r) => r.requestId === received[0]!.requestId && r.requestId !== 'undefined'));
    client.ws.close(1000);
    await once(client.ws, 'close');
  });

  test('to: http: a failed POST or an oversized answer is a problem message, and the connection goes on', async () => {
    const dead = await openWs(`ws://127.0.0.1:${port}/dead-ws`);
    dead.ws.send('hello');
    const failed = JSON.parse((await dead.next()).data.toString());
    assert.equal(failed.code, 'TP_UPSTREAM_UNAVAILABLE');
    assert.ok(!JSON.stringify(failed).includes('127.0.0.1'));
    dead.ws.send('again');
    assert.equal(JSON.parse((await dead.next()).data.toString()).code, 'TP_UPSTREAM_UNAVAILABLE');
    dead.ws.terminate();

    const small = await openWs(`ws://127.0.0.1:${port}/small`);
    small.ws.send('give me a lot');
    const big = JSON.parse((await small.next()).data.toString());
    assert.equal(big.code, 'TP_UPSTREAM_BODY_TOO_LARGE');
    assert.equal(big.status, 502);
    small.ws.send('x'.repeat(2048)); // over the route's maxBodySize: ws closes with 1009
    const [code] = (await once(small.ws, 'close')) as [number];
    assert.equal(code, 1009);

    received.length = 0;
    const png = await openWs(`ws://127.0.0.1:${port}/png`);
    png.ws.send('a,b');
    const image = await png.next();
    assert.equal(image.isBinary, true);
    assert.deepEqual([...image.data], [137, 80]);
    assert.equal(received[0]!.type, 'text/csv');
    png.ws.terminate();
  });

  test('to: http answers a plain request 426 with Upgrade: websocket', async () => {
    const r = await request(port, '/orders-ws');
    assertProblem(r, 426, 'TP_UPGRADE_REQUIRED');
    assert.equal(r.headers.upgrade, 'websocket');
  });
});
