// Traces: spans reach an OTLP/HTTP receiver written here (the exporter sends JSON; the receiver decodes it), the
// trace context goes upstream, retries are attempt spans, sampling 0 and 1, an unreachable collector.
import '../helpers/test-plugins.ts';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type Gateway } from '../../src/index.ts';
import type { RequestContext } from '../../src/request-context.ts';
import { nextEvent } from '../helpers/events.ts';
import { closedPort } from '../helpers/ports.ts';
import { request, startBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

interface Attr {
  readonly key: string;
  readonly value: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
}

/** One span as the receiver decoded it (OTLP JSON: ids are hex). */
interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  /** 2 server, 3 client */
  readonly kind: number;
  readonly attributes: Attr[];
  readonly status?: { code?: number };
  readonly events?: { name: string; attributes: Attr[] }[];
  readonly service: string;
}

function attr(span: ReceivedSpan, key: string): string | number | boolean | undefined {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.stringValue ?? v.boolValue ?? v.doubleValue;
}

/** An OTLP/HTTP traces receiver: decodes each JSON export; `spansWhere` waits for the batches it needs. */
class Receiver extends EventEmitter {
  readonly spans: ReceivedSpan[] = [];
  exports = 0;
  server!: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        assert.equal(req.url, '/v1/traces');
        assert.match(String(req.headers['content-type']), /application\/json/);
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans: {
            resource: { attributes: Attr[] };
            scopeSpans: { spans: Omit<ReceivedSpan, 'service'>[] }[];
          }[];
        };
        for (const rs of body.resourceSpans) {
          const service = String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue);
          for (const ss of rs.scopeSpans) for (const s of ss.spans) this.spans.push({ ...s, service });
        }
        this.exports++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        this.emit('batch');
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/traces`;
    return this;
  }

  /** Resolves with the spans once `done` says they are all there (checked after each batch). */
  async spansWhere(done: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
    while (!done(this.spans)) await once(this, 'batch');
    return this.spans;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const closers: (() => Promise<unknown>)[] = [];
after(() => Promise.all(closers.map((c) => c().catch(() => undefined))));

async function receiver(): Promise<Receiver> {
  const r = await new Receiver().start();
  closers.push(() => r.close());
  return r;
}

/** A backend that records the headers of each request and answers with `statuses` in turn (then 200). */
async function backend(statuses: number[] = []): Promise<Backend & { seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const b = await startBackend((req, res) => {
    seen.push(req.headers);
    res.writeHead(statuses.shift() ?? 200, { 'content-type': 'text/plain' }).end('ok');
  });
  closers.push(() => b.close());
  return Object.assign(b, { seen });
}

const config = (target: string, tracing: string, upstream = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [{ url: "${target}" }]
${upstream}
routes: [{ name: api, match: { path: /api }, upstream: app }]
tracing: ${tracing}
`;

/** W3C traceparent: version-traceid-parentid-flags. */
function parseTraceparent(v: unknown): { traceId: string; parentId: string; flags: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/.exec(String(v));
  assert.ok(m, `a traceparent, got ${String(v)}`);
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

/** The trace id the request context of the next request `gw` ends carries (what the access log writes). */
async function nextTraceId(gw: Gateway): Promise<string | undefined> {
  const event = await nextEvent('turnpike:request:end', gw.runtime.gateway, () => true, 'a request end');
  return (event.ctx as RequestContext).traceId;
}

const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_PARENT = '00f067aa0ba902b7';

describe('tracing', () => {
  test('a sampled request: the client trace continues in a server span, its client span goes upstream', async () => {
    const otlp = await receiver();
    const app = await backend();
    const gw = await startGatewayYaml(
      config(app.url, `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, serviceName: edge, batchDelay: 10ms }`),
    );
    closers.push(() => gw.stop());
    const traceId = nextTraceId(gw);
    const res = await request(gw.port(), '/api/items', {
      headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`, tracestate: 'vendor=abc' },
    });
    assert.equal(res.status, 200);
    const spans = await otlp.spansWhere((s) => s.length >= 2);
    const server = spans.find((s) => s.kind === 2)!;
    const client = spans.find((s) => s.kind === 3)!;
    assert.ok(server && client, 'a server span and a client span');
    assert.equal(server.service, 'edge');
    assert.equal(server.traceId, INCOMING_TRACE);
    assert.equal(server.parentSpanId, INCOMING_PARENT);
    assert.equal(client.traceId, INCOMING_TRACE);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(server.name, 'GET api');
    assert.equal(attr(server, 'turnpike.route'), 'api');
    assert.equal(attr(server, 'http.response.status_code'), 200);
    assert.equal(attr(server, 'client.address'), '127.0.0.1');
    assert.equal(attr(server, 'turnpike.request_id'), res.headers['x-request-id']);
    assert.equal(attr(client, 'turnpike.target'), app.url);
    assert.equal(attr(client, 'turnpike.attempt'), 1);
    assert.equal(attr(client, 'http.response.status_code'), 200);
    // The backend sees the trace with the client span as its parent, and the client's tracestate.
    const upstream = parseTraceparent(app.seen[0]!.traceparent);
    assert.deepEqual(upstream, { traceId: INCOMING_TRACE, parentId: client.spanId, flags: '01' });
    assert.equal(app.seen[0]!.tracestate, 'vendor=abc');
    assert.equal(await traceId, INCOMING_TRACE, 'the context (the access log) has the trace id');
  });

  test('an invalid traceparent starts a new trace, and the tracestate that came with it is dropped', async () => {
    const otlp = await receiver();
    const app = await backend();
    const gw = await startGatewayYaml(
      config(app.url, `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }`),
    );
    closers.push(() => gw.stop());
    const headers = { traceparent: `00-${'0'.repeat(32)}-${INCOMING_PARENT}-01`, tracestate: 'vendor=abc' };
    assert.equal((await request(gw.port(), '/api/x', { headers })).status, 200);
    const spans = await otlp.spansWhere((s) => s.length >= 2);
    const server = spans.find((s) => s.kind === 2)!;
    assert.equal(server.parentSpanId ?? '', '');
    assert.equal(parseTraceparent(app.seen[0]!.traceparent).traceId, server.traceId);
    assert.equal(app.seen[0]!.tracestate, undefined);
  });

  test('sampleRatio 1 without a traceparent starts a trace; a retried request has one client span per try', async () => {
    const otlp = await receiver();
    const app = await backend([503]);
    const gw = await startGatewayYaml(
      config(
        app.url,
        `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }`,
        '    retries: { attempts: 1, on: [503], backoff: 1ms }',
      ),
    );
    closers.push(() => gw.stop());
    const traceId = nextTraceId(gw);
    assert.equal((await request(gw.port(), '/api/retried')).status, 200);
    const spans = await otlp.spansWhere((s) => s.length >= 3);
    const server = spans.find((s) => s.kind === 2)!;
    assert.equal(server.service, 'turnpike');
    assert.equal(server.parentSpanId ?? '', '', 'a new trace has no parent');
    assert.equal(await traceId, server.traceId);
    assert.deepEqual(
      server.events?.map((e) => [e.name, attr({ attributes: e.attributes } as ReceivedSpan, 'error.type')]),
      [['retry', 'status']],
    );
    const tries = spans
      .filter((s) => s.kind === 3)
      .sort((a, b) => Number(attr(a, 'turnpike.attempt')) - Number(attr(b, 'turnpike.attempt')));
    assert.equal(tries.length, 2);
    for (const t of tries) {
      assert.equal(t.traceId, server.traceId);
      assert.equal(t.parentSpanId, server.spanId);
    }
    assert.equal(attr(tries[0]!, 'turnpike.attempt'), 1);
    assert.equal(attr(tries[0]!, 'error.type'), 'status');
    assert.equal(attr(tries[0]!, 'http.response.status_code'), 503);
    assert.equal(tries[0]!.status?.code, 2);
    assert.equal(attr(tries[1]!, 'turnpike.attempt'), 2);
    assert.equal(attr(tries[1]!, 'http.request.resend_count'), 1);
    assert.equal(attr(tries[1]!, 'error.type'), undefined);
    // Each try carried its own client span's id upstream.
    assert.deepEqual(
      app.seen.map((h) => parseTraceparent(h.traceparent).parentId),
      tries.map((t) => t.spanId),
    );
  });

  test('a request a plugin failed: the server span has the exception and the code', async () => {
    const otlp = await receiver();
    const app = await backend();
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${app.url}" }] } }
routes: [{ name: broken, match: { path: / }, upstream: app, plugins: [{ test-throw: { in: request } }] }]
tracing: { otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }
`);
    closers.push(() => gw.stop());
    assert.equal((await request(gw.port(), '/x')).status, 500);
    const [server] = await otlp.spansWhere((s) => s.length >= 1);
    assert.equal(server!.kind, 2);
    assert.equal(server!.status?.code, 2);
    assert.equal(attr(server!, 'error.type'), 'TP_INTERNAL');
    const exception = server!.events?.find((e) => e.name === 'exception');
    assert.equal(
      attr({ attributes: exception?.attributes ?? [] } as unknown as ReceivedSpan, 'exception.message'),
      'test-throw: request hook failed',
    );
    assert.equal(app.seen.length, 0);
  });

  test('a WebSocket handshake is a client span of the request, and the backend gets its traceparent', async () => {
    const otlp = await receiver();
    const app = await backend();
    const wss = new WebSocketServer({ noServer: true });
    const upgrades: IncomingHttpHeaders[] = [];
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgrades.push(req.headers);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m)));
    });
    closers.push(async () => wss.close());
    const gw = await startGatewayYaml(
      config(app.url, `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }`),
    );
    closers.push(() => gw.stop());
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port()}/api/socket`);
    await once(ws, 'open');
    ws.send('ping');
    const [echo] = (await once(ws, 'message')) as [Buffer];
    assert.equal(echo.toString(), 'ping');
    ws.close();
    const spans = await otlp.spansWhere((s) => s.some((x) => x.kind === 2) && s.some((x) => x.kind === 3));
    const server = spans.find((s) => s.kind === 2)!;
    const client = spans.find((s) => s.kind === 3)!;
    assert.equal(client.traceId, server.traceId);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(attr(client, 'http.response.status_code'), 101);
    assert.equal(attr(client, 'url.full'), `${app.url}/api/socket`);
    assert.equal(attr(client, 'error.type'), undefined);
    const upstream = parseTraceparent(upgrades[0]!.traceparent);
    assert.deepEqual(upstream, { traceId: server.traceId, parentId: client.spanId, flags: '01' });
  });

  test("an aggregate's calls are client spans of the request, each with its own path and traceparent", async () => {
    const otlp = await receiver();
    const users = await backend();
    const orders = await backend([503]);
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  users: { targets: [{ url: "${users.url}" }] }
  orders: { targets: [{ url: "${orders.url}" }], retries: { attempts: 1, on: [503], backoff: 1ms } }
routes:
  - name: profile
    match: { path: /profile/:id }
    aggregate:
      calls:
        - { name: user, upstream: users, path: "/users/{params.id}" }
        - { name: orders, upstream: orders, path: "/orders?user={params.id}" }
tracing: { otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }
`);
    closers.push(() => gw.stop());
    assert.equal((await request(gw.port(), '/profile/7')).status, 200);
    const spans = await otlp.spansWhere(
      (s) => s.filter((x) => x.kind === 3).length >= 3 && s.some((x) => x.kind === 2),
    );
    const server = spans.find((s) => s.kind === 2)!;
    const calls = spans.filter((s) => s.kind === 3);
    for (const c of calls) {
      assert.equal(c.traceId, server.traceId);
      assert.equal(c.parentSpanId, server.spanId);
    }
    const byUrl = (url: string) => calls.filter((c) => attr(c, 'url.full') === url);
    assert.equal(byUrl(`${users.url}/users/7`).length, 1);
    const orderTries = byUrl(`${orders.url}/orders`).sort(
      (a, b) => Number(attr(a, 'turnpike.attempt')) - Number(attr(b, 'turnpike.attempt')),
    );
    assert.deepEqual(
      orderTries.map((t) => [attr(t, 'http.response.status_code'), attr(t, 'http.request.resend_count')]),
      [
        [503, undefined],
        [200, 1],
      ],
    );
    assert.equal(attr(byUrl(`${users.url}/users/7`)[0]!, 'http.request.resend_count'), undefined);
    // Each call carried its own client span upstream.
    assert.equal(parseTraceparent(users.seen[0]!.traceparent).parentId, byUrl(`${users.url}/users/7`)[0]!.spanId);
    assert.deepEqual(
      orders.seen.map((h) => parseTraceparent(h.traceparent).parentId),
      orderTries.map((t) => t.spanId),
    );
  });

  test('sampleRatio 0: no span is made or exported, and the trace context passes through untouched', async () => {
    const otlp = await receiver();
    const app = await backend();
    const gw = await startGatewayYaml(config(app.url, `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 0 }`));
    const incoming = `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`;
    const traceId = nextTraceId(gw);
    assert.equal((await request(gw.port(), '/api/a', { headers: { traceparent: incoming } })).status, 200);
    assert.equal(await traceId, undefined, 'no trace id without tracing');
    assert.equal((await request(gw.port(), '/api/b')).status, 200);
    await gw.stop(); // a provider would flush here
    assert.equal(otlp.exports, 0);
    assert.equal(app.seen[0]!.traceparent, incoming);
    assert.equal(app.seen[1]!.traceparent, undefined, 'no traceparent is invented');
  });

  test('an unsampled incoming traceparent is followed: nothing exported, the trace id still goes upstream', async () => {
    const otlp = await receiver();
    const app = await backend();
    const gw = await startGatewayYaml(
      config(app.url, `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 1, batchDelay: 10ms }`),
    );
    assert.equal(
      (await request(gw.port(), '/api/a', { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-00` } }))
        .status,
      200,
    );
    await gw.stop();
    assert.equal(otlp.exports, 0);
    const upstream = parseTraceparent(app.seen[0]!.traceparent);
    assert.equal(upstream.traceId, INCOMING_TRACE);
    assert.equal(upstream.flags, '00');
  });

  test('a new trace the ratio leaves out: nothing exported; each try carries its trace id, not sampled', async () => {
    const otlp = await receiver();
    const app = await backend([503]);
    // A ratio this small samples one new trace in about 2^32 * 1e-9 ≈ 4 billion: none of these two.
    const gw = await startGatewayYaml(
      config(
        app.url,
        `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: 0.000000001, batchDelay: 10ms }`,
        '    retries: { attempts: 1, on: [503], backoff: 1ms }',
      ),
    );
    const first = nextTraceId(gw);
    assert.equal((await request(gw.port(), '/api/retried')).status, 200);
    const traceId = await first;
    const second = nextTraceId(gw);
    assert.equal((await request(gw.port(), '/api/b')).status, 200);
    const otherTraceId = await second;
    await gw.stop(); // a provider would flush here
    assert.equal(otlp.exports, 0);
    const tries = app.seen.map((h) => parseTraceparent(h.traceparent));
    assert.equal(tries.length, 3);
    assert.ok(traceId !== undefined && otherTraceId !== undefined && traceId !== otherTraceId);
    assert.deepEqual(
      tries.map((t) => [t.traceId, t.flags]),
      [
        [traceId, '00'],
        [traceId, '00'],
        [otherTraceId, '00'],
      ],
    );
    assert.notEqual(tries[0]!.parentId, tries[1]!.parentId, 'each try has its own span id');
  });

  test('a reload that changes tracing: replaces the exporter; a request in flight ends on the old one', async () => {
    const otlp = await receiver();
    let release: (() => void) | null = null;
    const held = new EventEmitter();
    const seen: IncomingHttpHeaders[] = [];
    const app = await startBackend((req, res) => {
      seen.push(req.headers);
      const answer = () => res.writeHead(200).end('ok');
      if (req.url === '/api/slow') {
        release = answer;
        held.emit('held');
      } else answer();
    });
    closers.push(() => app.close());
    const tracing = (service: string, ratio = 1) =>
      `{ otlp: { endpoint: "${otlp.url}" }, sampleRatio: ${ratio}, serviceName: ${service}, batchDelay: 10ms }`;
    const gw = await startGatewayYaml(config(app.url, tracing('before', 0)));
    closers.push(() => gw.stop());
    const reload = async (t: string) => {
      writeFileSync(gw.file, config(app.url, t) + 'accessLog: { enabled: false }\n');
      assert.equal((await gw.reloader!.reload('test')).ok, true);
    };
    assert.equal((await request(gw.port(), '/api/untraced')).status, 200);
    await reload(tracing('old'));
    const slow = request(gw.port(), '/api/slow');
    await once(held, 'held');
    await reload(tracing('new'));
    assert.equal((await request(gw.port(), '/api/fast')).status, 200);
    release!();
    assert.equal((await slow).status, 200);
    const spans = await otlp.spansWhere((s) => s.length >= 4);
    const byPath = (path: string) => spans.filter((s) => s.kind === 3 && String(attr(s, 'url.full')).endsWith(path));
    assert.equal(seen[0]!.traceparent, undefined, 'tracing was off before the first reload');
    assert.deepEqual(
      byPath('/api/slow').map((s) => s.service),
      ['old'],
    );
    assert.deepEqual(
      byPath('/api/fast').map((s) => s.service),
      ['new'],
    );
    assert.equal(spans.filter((s) => s.kind === 2).length, 2);
  });

  test('an unreachable collector costs requests nothing and is one warn line in the gateway log', async () => {
    const app = await backend();
    const port = await closedPort();
    const lines: { level: number; msg: string; endpoint?: string }[] = [];
    const logged = new EventEmitter();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n'))
          if (line !== '') {
            lines.push(JSON.parse(line) as (typeof lines)[number]);
            logged.emit('line');
          }
        done();
      },
    });
    const file = join(tempDir(), 'turnpike.yaml');
    const endpoint = `http://127.0.0.1:${port}/v1/traces`;
    writeFileSync(
      file,
      config(app.url, `{ otlp: { endpoint: "${endpoint}", timeout: 200ms }, sampleRatio: 1, batchDelay: 10ms }`) +
        'accessLog: { enabled: false }\n',
    );
    const gw = await startGateway({ configFile: file, log: pino({ level: 'info' }, sink), watch: false });
    closers.push(() => gw.stop());
    for (let i = 0; i < 5; i++) assert.equal((await request(gw.port(), `/api/${i}`)).status, 200);
    const failed = () => lines.filter((l) => l.msg.startsWith('trace export failed'));
    while (failed().length === 0) await once(logged, 'line');
    assert.equal(failed()[0]!.level, 40);
    assert.equal(failed()[0]!.endpoint, endpoint);
    for (let i = 0; i < 5; i++) assert.equal((await request(gw.port(), `/api/more-${i}`)).status, 200);
    await gw.stop(); // the last batch fails too: still one line within the minute
    assert.equal(failed().length, 1);
  });
});
