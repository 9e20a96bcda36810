// U04 (HAProxy `retries` on connection attempts): a target whose port is closed (RST on SYN) and a "blackhole"
// target (a local listener whose accept backlog is full: SYNs are dropped). A refused connect sent nothing, so it
// is retried at once on another target for every method, POST included (the default policy: one retry on
// connect-failure); with every target refusing, 502 TP_UPSTREAM_UNAVAILABLE. A blackhole is given up at
// `timeouts.connect` (5s by default, 500ms here) and then retried like a refusal; alone it is a 504
// TP_UPSTREAM_TIMEOUT, as nginx answers a connect timeout.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/index.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { closedPort, problemCode, rawRequest, startBlackhole, type Blackhole } from '../helpers/upstream-faults.ts';

let healthy: RecordingBackend;
let blackhole: Blackhole;
let closed: string;
let closed2: string;

before(async () => {
  healthy = await startRecordingBackend();
  blackhole = await startBlackhole();
  closed = `http://127.0.0.1:${await closedPort()}`;
  closed2 = `http://127.0.0.1:${await closedPort()}`;
});
after(async () => {
  await healthy.close();
  await blackhole.close();
});

function gateway(targets: string[], extra = '') {
  return startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [${targets.map((t) => `{ url: "${t}" }`).join(', ')}]
    timeouts: { connect: 500ms }
    ${extra}
routes: [{ match: { path: / }, upstream: app }]
`);
}

const send = (port: number, method: string, path: string, body = '') =>
  rawRequest(
    port,
    `${method} ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('a closed port beside a healthy target', () => {
  test('every request, whatever its method, is retried on the healthy target and gets its 200', async () => {
    const gw = await gateway([closed, healthy.url]);
    try {
      // Round robin sends every other first try to the closed port.
      for (const [i, method] of ['GET', 'POST', 'PUT', 'DELETE', 'POST', 'PATCH'].entries()) {
        const body = method === 'GET' || method === 'DELETE' ? '' : `order=${i}`;
        const r = await send(gw.port('web'), method, `/refused/${i}`, body);
        assert.equal(r.status, 200, `${method}: ${r.text}`);
        const arrived = healthy.arrivals.filter((a) => a.url === `/refused/${i}`);
        assert.equal(arrived.length, 1);
        assert.equal(arrived[0]!.sha256, sha(body));
      }
    } finally {
      await gw.stop();
    }
  });
});

test('every target refusing: 502 TP_UPSTREAM_UNAVAILABLE, without naming them', async () => {
  const gw = await gateway([closed, closed2], 'retries: { attempts: 3, backoff: 0ms }');
  try {
    const r = await send(gw.port('web'), 'POST', '/down', 'x=1');
    assert.equal(r.status, 502, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_UNAVAILABLE');
    assert.ok(!r.text.includes('127.0.0.1') && !r.text.includes(closed.split(':')[2]!), r.text);
  } finally {
    await gw.stop();
  }
});

describe('a blackhole target', () => {
  test('alone: given up at the connect timeout with a 504', async () => {
    const gw = await gateway([blackhole.url]);
    try {
      const r = await send(gw.port('web'), 'GET', '/void');
      assert.equal(r.status, 504, r.text);
      assert.equal(problemCode(r), 'TP_UPSTREAM_TIMEOUT');
      assert.ok(!r.text.includes(String(blackhole.port)), r.text);
    } finally {
      await gw.stop();
    }
  });

  test('beside a healthy target: a POST is sent on to it after the connect timeout and gets its 200', async () => {
    const gw = await gateway([blackhole.url, healthy.url]);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await send(gw.port('web'), 'POST', `/void/${i}`, 'pay=1');
        assert.equal(r.status, 200, r.text);
        assert.equal(healthy.arrivals.filter((a) => a.url === `/void/${i}`).length, 1);
      }
    } finally {
      await gw.stop();
    }
  });
});

test('the connect timeout is 5s unless configured', () => {
  const config = parseConfig(`
listeners: [{ name: web, protocol: http, port: 0 }]
upstreams: { app: { targets: [{ url: "http://127.0.0.1:1" }] } }
routes: [{ match: { path: / }, upstream: app }]
`);
  assert.equal(config.upstreams.app!.timeouts.connect, 5000);
});
