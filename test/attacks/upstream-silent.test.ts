// U03 (Envoy route timeout): a backend accepts, reads the request and never answers. The client gets 504
// TP_UPSTREAM_TIMEOUT at the response timeout (here `timeouts: { response: 500ms }`; 60s by default), the upstream
// socket is closed, and the circuit breaker counts a failure. A GET goes to another target only when the retry
// policy lists `timeout` (it is not in the default `on`); a POST never does.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { nextEvent } from '../helpers/events.ts';
import { startRecordingBackend, type RecordingBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { problemCode, rawRequest, requestCount, startRequestScriptedBackend } from '../helpers/upstream-faults.ts';

let silent: ScriptedBackend;
let healthy: RecordingBackend;
/** The silent backend's sockets, by arrival. */
const sockets: Socket[] = [];

before(async () => {
  silent = await startRequestScriptedBackend((socket) => void sockets.push(socket));
  healthy = await startRecordingBackend();
});
after(async () => {
  await silent.close();
  await healthy.close();
});

/** A gateway whose upstream is the silent backend, and the healthy one as its backup when `backup`. */
function gateway(upstreamExtra: string, backup = false) {
  const targets = `[{ url: "${silent.url}" }${backup ? `, { url: "${healthy.url}", backup: true }` : ''}]`;
  return startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: ${targets}
    timeouts: { response: 500ms }
    ${upstreamExtra}
routes: [{ match: { path: / }, upstream: app }]
`);
}

const send = (port: number, method: string, path: string, body = '') =>
  rawRequest(
    port,
    `${method} ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );

describe('one silent target', () => {
  let gw: Awaited<ReturnType<typeof gateway>>;
  before(async () => {
    gw = await gateway('circuitBreaker: { minimumRequests: 1, failureRatio: 100%, openFor: 60s }');
  });
  after(() => gw.stop());

  test('the client gets 504 at the response timeout, the upstream socket is closed, and the breaker counts it', async () => {
    const opened = nextEvent('turnpike:upstream:breaker', gw.runtime.gateway, (e) => e.to === 'open', 'the breaker');
    const r = await send(gw.port('web'), 'GET', '/never');
    assert.equal(r.status, 504, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_TIMEOUT');
    assert.ok(!r.text.includes(String(silent.port)), 'the backend address leaked');
    const socket = sockets.at(-1)!;
    if (!socket.destroyed) await once(socket, 'close');
    await opened;
    // The breaker, open after that one failure, fails the next request fast without going upstream.
    const fast = await send(gw.port('web'), 'GET', '/never-again');
    assert.equal(fast.status, 503);
    assert.equal(problemCode(fast), 'TP_CIRCUIT_OPEN');
    assert.equal(requestCount(silent, '/never-again'), 0);
  });
});

describe('a silent primary and a healthy backup', () => {
  test('without timeout in the retry policy a GET is not sent to another target: 504', async () => {
    for (const policy of ['', 'retries: { attempts: 2 }']) {
      const gw = await gateway(policy, true);
      try {
        const before = healthy.arrivals.length;
        const r = await send(gw.port('web'), 'GET', '/once');
        assert.equal(r.status, 504, `${policy}: ${r.text}`);
        assert.equal(healthy.arrivals.length, before);
      } finally {
        await gw.stop();
      }
    }
  });

  test('with retries on timeout, a GET is tried once more on the other target and gets its 200', async () => {
    const gw = await gateway('retries: { attempts: 1, on: [timeout] }', true);
    try {
      const r = await send(gw.port('web'), 'GET', '/retried');
      assert.equal(r.status, 200, r.text);
      assert.equal(requestCount(silent, '/retried'), 1);
      assert.equal(healthy.arrivals.filter((a) => a.url === '/retried').length, 1);
    } finally {
      await gw.stop();
    }
  });

  test('with retries on timeout, a POST that reached the silent target is never sent again: 504', async () => {
    const gw = await gateway('retries: { attempts: 1, on: [timeout] }', true);
    try {
      const r = await send(gw.port('web'), 'POST', '/order', 'buy=1');
      assert.equal(r.status, 504, r.text);
      assert.equal(healthy.arrivals.filter((a) => a.url === '/order').length, 0);
    } finally {
      await gw.stop();
    }
  });
});
