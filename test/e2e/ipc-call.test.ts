// Calls from a worker to its primary over IPC: a reply settles its own call, and a primary that does not answer
// fails the call within a bound (the limit plugins' onStoreError, a PURGE's 503) instead of hanging the request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IpcCalls } from '../../src/stores/ipc-call.ts';
import { spawnGateway, type GatewayProcess, untilWorkersStarted } from '../helpers/process.ts';
import { freePort } from '../helpers/ports.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

type Ask = { readonly type: 'ask'; readonly id: number; readonly n: number };
type Answer = { readonly type: 'answer'; readonly id: number; readonly n: number };

function caller() {
  const sent: Ask[] = [];
  const calls = new IpcCalls<Ask, Answer>((m) => sent.push(m));
  return { calls, sent };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('IpcCalls', () => {
  test('a reply resolves the call with its id, out of order too, and leaves nothing pending', async () => {
    const { calls, sent } = caller();
    const first = calls.call({ type: 'ask', n: 1 }, 5000);
    const second = calls.call({ type: 'ask', n: 2 }, 5000);
    assert.equal(calls.size, 2);
    assert.notEqual(sent[0]!.id, sent[1]!.id, 'each call has its own id');
    assert.equal(calls.receive({ type: 'answer', id: sent[1]!.id, n: 20 }), true);
    assert.equal(calls.receive({ type: 'answer', id: sent[0]!.id, n: 10 }), true);
    assert.deepEqual([(await first).n, (await second).n], [10, 20]);
    assert.equal(calls.size, 0);
  });

  test('no reply within the timeout rejects with TP_STORE_UNAVAILABLE and leaves nothing pending', async () => {
    const { calls } = caller();
    await assert.rejects(calls.call({ type: 'ask', n: 1 }, 20), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'TP_STORE_UNAVAILABLE');
      assert.match(err.message, /the primary did not answer within 20 ms/);
      return true;
    });
    assert.equal(calls.size, 0);
  });

  test('a reply after the timeout is ignored: receive says no call waited for it', async () => {
    const { calls, sent } = caller();
    const late = calls.call({ type: 'ask', n: 1 }, 20);
    await assert.rejects(late, { code: 'TP_STORE_UNAVAILABLE' });
    assert.equal(calls.receive({ type: 'answer', id: sent[0]!.id, n: 1 }), false);
    assert.equal(calls.receive({ type: 'answer', id: 999, n: 1 }), false, 'an id never sent');
    assert.equal(calls.size, 0);
  });

  test('a send that throws rejects the call at once with TP_STORE_UNAVAILABLE', async () => {
    const calls = new IpcCalls<Ask, Answer>(() => {
      throw new Error('channel closed');
    });
    await assert.rejects(calls.call({ type: 'ask', n: 1 }, 5000), { code: 'TP_STORE_UNAVAILABLE' });
    assert.equal(calls.size, 0);
  });

  test('the timeout timer does not keep the process alive', () => {
    const { calls, sent } = caller();
    const before = timeouts();
    void calls.call({ type: 'ask', n: 1 }, 60_000);
    assert.equal(timeouts(), before, "an unref'd timer is no active resource");
    calls.receive({ type: 'answer', id: sent[0]!.id, n: 1 });
  });
});

describe('workers whose primary does not answer', () => {
  let backend: Backend;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end('item');
    });
    // A fixed port: each worker accepts on its own SO_REUSEPORT sockets, so a stopped primary leaves them serving
    // (with port 0 the primary would hand out the connections).
    const port = await freePort();
    gw = await spawnGateway(`
workers: 2
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: ${port} }]
upstreams: { b: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: allow
    match: { path: /allow }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 1000, per: 1m }], key: ip, onStoreError: allow } }]
  - name: deny
    match: { path: /deny }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 1000, per: 1m }], key: ip, onStoreError: deny } }]
  - name: slots
    match: { path: /slots }
    respond: { body: ok }
    plugins: [{ concurrency: { max: 1 } }]
  - name: items
    match: { path: /items }
    upstream: b
    plugins: [{ cache: { purge: { allow: [127.0.0.1/32] } } }]
`);
    await untilWorkersStarted(gw);
  });

  after(async () => {
    process.kill(gw.pid, 'SIGCONT');
    await gw.stop();
    await backend.close();
  });

  /** A fresh connection, failed by the client after `limitMs` (a request that hangs must fail the test, not stall it). */
  const send = async (path: string, limitMs: number, method = 'GET') => {
    const r = await fetch(`http://127.0.0.1:${gw.port()}${path}`, {
      method,
      signal: AbortSignal.timeout(limitMs),
      headers: { connection: 'close' },
    });
    return { status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() };
  };

  test('a stopped primary: rate-limit applies onStoreError, concurrency and PURGE answer 503, none hangs; a slot it grants too late is given back', async (t) => {
    assert.match(
      (await send('/allow', 5000)).headers.ratelimit ?? '',
      /^"1m";r=999;t=/,
      'the primary counts while it answers',
    );
    assert.equal((await send('/slots', 5000)).status, 200);
    assert.equal((await send('/items', 5000)).status, 200);

    process.kill(gw.pid, 'SIGSTOP'); // the primary's IPC goes unread; the workers keep serving
    try {
      const started = performance.now();
      // The bounds are the calls' timeouts (500 ms; a purge waits 2 s for the other workers first) plus slack.
      const [allow, deny, slots, purge] = await Promise.all([
        send('/allow', 3000),
        send('/deny', 3000),
        send('/slots', 3000),
        send('/items', 6000, 'PURGE'),
      ]);
      t.diagnostic(
        `answered while the primary was stopped, the last after ${(performance.now() - started).toFixed(0)} ms`,
      );
      assert.equal(allow.status, 200, allow.body);
      assert.equal(allow.headers.ratelimit, undefined, 'no count to report');
      assertProblem(deny, 503, 'TP_STORE_UNAVAILABLE');
      assertProblem(slots, 503, 'TP_STORE_UNAVAILABLE');
      assertProblem(purge, 503, 'TP_STORE_UNAVAILABLE');
    } finally {
      process.kill(gw.pid, 'SIGCONT');
    }
    await until(() => gw.logLines.some((l) => l.includes('rate-limit store unavailable')), 'the outage log line');

    // Answering again: the primary granted the only slot after the worker gave up on it, and the worker hands it
    // back (the client got its 503; nobody holds the slot).
    await until(async () => (await send('/slots', 5000)).status === 200, 'the late slot to be released');
    assert.match((await send('/allow', 5000)).headers.ratelimit ?? '', /^"1m";r=99\d;t=/);
    assert.equal((await send('/items', 5000, 'PURGE')).status, 200);
  });
});
