// Calls from a worker to its primary over IPC: a reply settles its own call, and a primary that does not answer
// fails the call within a bound (the limit plugins' onStoreError, a PURGE's 503) instead of hanging the request.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IpcCalls } from '../src/stores/ipc-call.ts';

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
    assert.equal(timeouts(), before, 'an unref\'d timer is no active resource');
    calls.receive({ type: 'answer', id: sent[0]!.id, n: 1 });
  });
});
