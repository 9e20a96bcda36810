// GET /api/events: the event stream as Server-Sent Events; request events carry route, upstream and status but
// never headers, query strings or bodies; ?route= and ?upstream= filter; reloads and drains are events too.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { request, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { openStream } from '../helpers/sse.ts';
import { until } from '../helpers/wait.ts';

let a: Backend;
let b: Backend;
let gw: Gateway & { file: string };
before(async () => {
  a = await startEchoBackend('a');
  b = await startEchoBackend('b');
  gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  one: { targets: [{ url: "${a.url}" }] }
  two: { targets: [{ url: "${b.url}" }] }
routes:
  - { name: first, match: { path: /one }, upstream: one }
  - { name: second, match: { path: /two }, upstream: two }
admin: { port: 0 }
`);
});
after(async () => {
  await gw.stop();
  await Promise.all([a.close(), b.close()]);
});

test('request events arrive as SSE with a safe subset of the request', async () => {
  const stream = await openStream(gw.admin!.port, '/api/events');
  try {
    assert.equal(stream.res.statusCode, 200);
    assert.match(String(stream.res.headers['content-type']), /^text\/event-stream/);
    await request(gw.port(), '/one/x?token=secret-in-query', { headers: { authorization: 'Bearer hidden-value' } });
    const e = await until(() => stream.events.find((x) => x.event === 'request'), 'a request event');
    assert.equal(e.data.route, 'first');
    assert.equal(e.data.upstream, 'one');
    assert.equal(e.data.status, 200);
    assert.equal(e.data.method, 'GET');
    assert.equal(e.data.path, '/one/x');
    const text = JSON.stringify(stream.events);
    assert.ok(!text.includes('secret-in-query') && !text.includes('hidden-value'), text);
  } finally {
    stream.close();
  }
});

test('?route= and ?upstream= filter the stream', async () => {
  const byRoute = await openStream(gw.admin!.port, '/api/events?route=second');
  const byUpstream = await openStream(gw.admin!.port, '/api/events?upstream=one');
  try {
    await request(gw.port(), '/one');
    await request(gw.port(), '/two');
    await request(gw.port(), '/one');
    await until(() => byUpstream.events.length >= 2 && byRoute.events.length >= 1, 'filtered events');
    // One more request through each: everything before it has been delivered to both streams.
    await request(gw.port(), '/two');
    await until(() => byRoute.events.length >= 2, 'the second /two event');
    assert.deepEqual(
      byRoute.events.map((e) => e.data.route),
      ['second', 'second'],
    );
    assert.deepEqual(
      byUpstream.events.map((e) => e.data.upstream),
      ['one', 'one'],
    );
  } finally {
    byRoute.close();
    byUpstream.close();
  }
});

test('reloads are events; a closed stream unsubscribes', async () => {
  const { CHANNELS } = await import('../../src/observability/events.ts');
  const before = CHANNELS.reload.hasSubscribers;
  const stream = await openStream(gw.admin!.port, '/api/events');
  await request(gw.admin!.port, '/api/reload', { method: 'POST' });
  const e = await until(() => stream.events.find((x) => x.event === 'reload'), 'a reload event');
  assert.equal(e.data.ok, true);
  stream.close();
  // The stream's subscription goes with its connection (other subscribers, if any, stay).
  await until(() => CHANNELS.reload.hasSubscribers === before, 'the stream to unsubscribe from reloads');
});
