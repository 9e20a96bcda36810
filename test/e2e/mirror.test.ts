// mirror: a copy of each (counted) request goes to another upstream with X-Turnpike-Mirror: true, its body intact
// and its answer discarded; a mirror that never answers fills the bounded queue, after which copies are dropped
// and counted, while every real request completes. No timing: drops are counted on the event stream and
// /metrics, arrivals awaited on the backends.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

interface Arrival {
  readonly req: IncomingMessage;
  readonly body: Buffer;
}

/** A backend that records each request with its whole body; `answer` false: it reads the body and never answers. */
async function recordingBackend(answer: boolean) {
  const arrivals: Arrival[] = [];
  const held: ServerResponse[] = [];
  const backend = await startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      arrivals.push({ req, body: Buffer.concat(chunks) });
      if (answer) res.writeHead(500, { 'content-type': 'text/plain' }).end('the mirror answered');
      else held.push(res);
    });
  });
  return { backend, arrivals, held };
}

/** A POST whose body goes out in chunks (no Content-Length): the gateway cannot know its size in advance. */
function chunkedPost(port: number, path: string, parts: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    for (const p of parts) req.write(p);
    req.end();
  });
}

/** The value of one sample (name and exact label text) in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  return undefined;
}

describe('mirror', () => {
  let main: Backend;
  let answering: Awaited<ReturnType<typeof recordingBackend>>;
  let silent: Awaited<ReturnType<typeof recordingBackend>>;
  let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
  const drops: { route: string; reason: string }[] = [];
  const onDrop = (m: unknown): void => {
    const e = m as { gateway: unknown; ctx: { routeName: string }; reason: string };
    if (e.gateway === gw?.runtime.gateway) drops.push({ route: e.ctx.routeName, reason: e.reason });
  };

  before(async () => {
    main = await startEchoBackend('main');
    answering = await recordingBackend(true);
    silent = await recordingBackend(false);
    gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
admin: { address: 127.0.0.1, port: 0 }
metrics: { enabled: true }
upstreams:
  main: { targets: [{ url: "${main.url}" }] }
  next: { targets: [{ url: "${answering.backend.url}" }] }
  silent: { targets: [{ url: "${silent.backend.url}" }] }
routes:
  - name: copied
    match: { path: /copied }
    upstream: main
    plugins:
      - mirror: { upstream: next }
  - name: sampled
    match: { path: /sampled }
    upstream: main
    plugins:
      - mirror: { upstream: next, share: 20% }
  - name: stuck
    match: { path: /stuck }
    upstream: main
    plugins:
      - mirror: { upstream: silent, queue: 2 }
  - name: small
    match: { path: /small }
    upstream: main
    plugins:
      - mirror: { upstream: next, maxBodySize: 16b }
`);
    subscribe('turnpike:mirror:dropped', onDrop);
  });

  after(async () => {
    unsubscribe('turnpike:mirror:dropped', onDrop);
    await gw?.stop();
    await Promise.all([main?.close(), answering?.backend.close(), silent?.backend.close()]);
  });

  test('the mirror gets the method, path, query, headers and body, with X-Turnpike-Mirror; its answer is discarded', async () => {
    const body = Buffer.from('{"order":42,"items":["a","b"]}');
    const r = await request(gw.port(), '/copied/orders?page=2', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-team': 'checkout' },
      body,
    });
    assert.equal(r.status, 200);
    assert.equal(json(r).name, 'main');
    assert.equal(json(r).body, body.toString());
    assert.equal(json(r).headers['x-turnpike-mirror'], undefined, 'the real upstream gets no mirror header');
    const copy = await until(() => answering.arrivals.find((a) => a.req.url === '/copied/orders?page=2'), 'the copy');
    assert.equal(copy.req.method, 'PUT');
    assert.equal(copy.req.headers['x-turnpike-mirror'], 'true');
    assert.equal(copy.req.headers['x-team'], 'checkout');
    assert.equal(copy.req.headers['content-type'], 'application/json');
    assert.equal(copy.req.headers['content-length'], String(body.length));
    assert.equal(copy.req.headers['x-request-id'], json(r).headers['x-request-id'], 'the same request id');
    assert.deepEqual(copy.body, body);
  });

  test('a streamed body reaches both upstreams intact, byte for byte', async () => {
    const parts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(4096, 97 + (i % 26)));
    const whole = Buffer.concat(parts);
    const r = await chunkedPost(gw.port(), '/copied/upload', parts);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).body, whole.toString());
    const copy = await until(() => answering.arrivals.find((a) => a.req.url === '/copied/upload'), 'the copy');
    assert.equal(copy.req.method, 'POST');
    assert.equal(copy.req.headers['x-turnpike-mirror'], 'true');
    assert.deepEqual(copy.body, whole);
  });

  test('share: 20% copies every fifth request, counted, not drawn', async () => {
    for (let i = 1; i <= 10; i++) {
      const r = await request(gw.port(), `/sampled?n=${i}`);
      assert.equal(r.status, 200);
    }
    const copies = await until(() => {
      const got = answering.arrivals.filter((a) => a.req.url!.startsWith('/sampled'));
      return got.length >= 2 && got;
    }, 'two copies');
    assert.deepEqual(copies.map((a) => a.req.url).sort(), ['/sampled?n=10', '/sampled?n=5']);
  });

  test('a mirror that never answers: every real request completes, copies past the queue are dropped and counted', async () => {
    drops.length = 0;
    for (let i = 1; i <= 6; i++) {
      const r = await request(gw.port(), `/stuck/${i}`, { method: 'POST', body: `payload ${i}` });
      assert.equal(r.status, 200);
      assert.equal(json(r).body, `payload ${i}`);
    }
    // Two copies hold the queue (the mirror read them and never answers); the other four were dropped.
    await until(() => silent.arrivals.length === 2, 'the two queued copies at the mirror');
    assert.deepEqual(
      silent.arrivals.map((a) => a.body.toString()),
      ['payload 1', 'payload 2'],
    );
    assert.deepEqual(
      drops,
      Array.from({ length: 4 }, () => ({ route: 'stuck', reason: 'queue' })),
    );
    const metrics = (await request(gw.admin!.port, '/metrics')).body;
    assert.equal(sample(metrics, 'turnpike_mirror_dropped_total{route="stuck",reason="queue"}'), 4);
    // Still full: the next one is dropped too, and still answered.
    assert.equal((await request(gw.port(), '/stuck/7')).status, 200);
    assert.equal(drops.length, 5);
  });

  test('a body over the mirror maxBodySize is not mirrored (counted), the real request goes on', async () => {
    drops.length = 0;
    const before = answering.arrivals.length;
    // With a Content-Length: known too large at once.
    const big = 'x'.repeat(100);
    const r = await request(gw.port(), '/small/a', { method: 'POST', body: big });
    assert.equal(r.status, 200);
    assert.equal(json(r).body, big);
    // Chunked: found too large while it streams.
    const streamed = await chunkedPost(gw.port(), '/small/b', [Buffer.from('0123456789'), Buffer.from('abcdefghij')]);
    assert.equal(streamed.status, 200);
    assert.equal(JSON.parse(streamed.body).body, '0123456789abcdefghij');
    // A small one still goes: its arrival shows the two before it were not sent.
    assert.equal((await request(gw.port(), '/small/c', { method: 'POST', body: 'tiny' })).status, 200);
    await until(() => answering.arrivals.some((a) => a.req.url === '/small/c'), 'the small copy');
    assert.deepEqual(
      answering.arrivals.slice(before).map((a) => a.req.url),
      ['/small/c'],
    );
    assert.deepEqual(drops, [
      { route: 'small', reason: 'body' },
      { route: 'small', reason: 'body' },
    ]);
  });
});
