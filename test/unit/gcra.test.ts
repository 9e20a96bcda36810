// GCRA on a simulated clock: burst, steady rate, no double burst at window edges, several limits, header values.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gcraConsume } from '../../src/limits/gcra.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import type { LimitSpec } from '../../src/limits/shared-store.ts';

const MS = 1000; // µs
const MINUTE = 60_000;

/** A limiter state and a clock in µs that the test moves by hand. */
function limiter(limits: LimitSpec[]) {
  const tats: number[] = [];
  let now = 1_700_000_000_000 * MS; // a realistic epoch in µs: the arithmetic must stay exact there
  return {
    at: (ms: number) => gcraConsume(tats, now + ms * MS, limits),
    advance(ms: number) {
      now += ms * MS;
    },
    hit: () => gcraConsume(tats, now, limits),
  };
}

function countAllowed(l: { hit: () => { allowed: boolean } }, n: number): number {
  let allowed = 0;
  for (let i = 0; i < n; i++) if (l.hit().allowed) allowed++;
  return allowed;
}

describe('GCRA', () => {
  test('a burst of N is allowed at once, the N+1-th is denied', () => {
    const l = limiter([{ requests: 100, per: MINUTE }]);
    assert.equal(countAllowed(l, 100), 100);
    const denied = l.hit();
    assert.equal(denied.allowed, false);
    assert.equal(denied.retryAfterMs, 600, 'one emission interval (60 s / 100)');
  });

  test('the burst holds exactly for rates whose interval is not a whole number of ms (7 per minute)', () => {
    const l = limiter([{ requests: 7, per: MINUTE }]);
    assert.equal(countAllowed(l, 10), 7);
  });

  test('after a burst, requests come back one per emission interval', () => {
    const l = limiter([{ requests: 10, per: 10_000 }]); // T = 1 s
    assert.equal(countAllowed(l, 10), 10);
    l.advance(999);
    assert.equal(l.hit().allowed, false, 'not before T');
    l.advance(1);
    assert.equal(l.hit().allowed, true, 'one at T');
    assert.equal(l.hit().allowed, false, 'only one');
    l.advance(3000);
    assert.equal(countAllowed(l, 5), 3, 'three intervals later: three');
  });

  test('no double burst at a window edge: N at the end of a window and N more just after is not allowed', () => {
    const l = limiter([{ requests: 100, per: MINUTE }]);
    l.advance(59_000); // the end of a would-be fixed window
    assert.equal(countAllowed(l, 100), 100);
    l.advance(1_001); // just into the next fixed window
    // A fixed window would allow 100 more here; GCRA has regained only 1001 ms / 600 ms = 1.
    assert.equal(countAllowed(l, 100), 1);
    // Over any full period no more than N + (period / T) pass: a full minute after the burst the bucket is full again.
    l.advance(MINUTE);
    assert.equal(countAllowed(l, 200), 100);
  });

  test('steady traffic at exactly the rate is never denied', () => {
    const l = limiter([{ requests: 5, per: 1000 }]); // T = 200 ms
    for (let i = 0; i < 50; i++) {
      assert.equal(l.hit().allowed, true, `request ${i}`);
      l.advance(200);
    }
  });

  test('several limits: a request passes only if all pass, and a denied one consumes from none', () => {
    const l = limiter([
      { requests: 3, per: 1000 },
      { requests: 5, per: MINUTE },
    ]);
    assert.equal(countAllowed(l, 4), 3, 'the per-second limit stops the 4th');
    const d = l.hit();
    assert.equal(d.allowed, false);
    assert.deepEqual(d.remaining, [0, 2], 'the denied requests took nothing from the per-minute limit');
    l.advance(1000);
    assert.equal(countAllowed(l, 4), 2, 'now the per-minute limit stops it: 3 + 2 = 5');
    const denied = l.hit();
    assert.deepEqual(denied.remaining, [1, 0]);
    // The per-minute limit's TAT is 5 × 12 s after the start, 1 s has passed, and it tolerates 4 × 12 s ahead.
    assert.equal(denied.retryAfterMs, 11_000, 'the per-minute limit decides Retry-After');
  });

  test('remaining and reset: requests left now, and ms until one more is free', () => {
    const l = limiter([{ requests: 100, per: MINUTE }]);
    const first = l.hit();
    assert.deepEqual([first.remaining, first.resetMs], [[99], [600]]);
    for (let i = 0; i < 57; i++) l.hit();
    const d = l.hit(); // 59th in the same instant
    assert.deepEqual([d.remaining, d.resetMs], [[41], [600]]);
    l.advance(250);
    const later = l.hit(); // 250 ms regained 0.4167 of a request; this one used one
    assert.deepEqual([later.remaining, later.resetMs], [[40], [350]]);
    const denied = limiter([{ requests: 1, per: 10_000 }]);
    denied.hit();
    denied.advance(2500);
    const d2 = denied.hit();
    assert.deepEqual([d2.allowed, d2.remaining, d2.resetMs, d2.retryAfterMs], [false, [0], [7500], 7500]);
  });

  test('the memory store applies GCRA per key on an injected clock and drops counters whose time has passed', () => {
    let now = 5_000_000;
    const store = new MemoryLimitStore({ now: () => now, sweepIntervalMs: 0 });
    const limits = [{ requests: 2, per: 1000 }];
    assert.equal(store.consume('a', limits).allowed, true);
    assert.equal(store.consume('a', limits).allowed, true);
    assert.equal(store.consume('a', limits).allowed, false);
    assert.equal(store.consume('b', limits).allowed, true, 'another key has its own counter');
    assert.equal(store.rateKeys, 2);
    now += 999_000;
    assert.equal(store.sweep(), 1, 'b (one request, T = 500 ms) has passed; a is still ahead of now');
    now += 1_000;
    assert.equal(store.sweep(), 1);
    assert.equal(store.rateKeys, 0);
    assert.equal(store.consume('a', limits).remaining[0], 1, 'a dropped counter reads as fresh');
    store.close();
  });
});
