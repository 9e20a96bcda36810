// Upstream resilience on a simulated clock (nothing sleeps): the circuit breaker, the retry budget and the
// outlier detector (passive health).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from '../../src/upstream/circuit-breaker.ts';
import { OutlierDetector, type OutlierDetectorOptions } from '../../src/upstream/outlier-detector.ts';
import { RetryBudget } from '../../src/upstream/retry-budget.ts';

/** A clock the test moves by hand. */
function clock(): { t: number; now: () => number } {
  const c = { t: 0, now: () => c.t };
  return c;
}

function breaker(options: Partial<CircuitBreakerOptions> = {}) {
  const c = clock();
  const changes: BreakerState[] = [];
  const b = new CircuitBreaker({
    failureRatio: 0.5,
    minimumRequests: 10,
    window: 10_000,
    openFor: 5_000,
    halfOpenRequests: 2,
    now: c.now,
    ...options,
  });
  b.onStateChange = (s) => changes.push(s);
  return { b, c, changes };
}

/** Sends `n` requests through the breaker with this outcome; returns how many it admitted. */
function send(b: CircuitBreaker, n: number, ok: boolean): number {
  let admitted = 0;
  for (let i = 0; i < n; i++) {
    if (!b.tryAcquire()) continue;
    admitted++;
    b.record(ok);
  }
  return admitted;
}

/** Opens a breaker with the default options of `breaker()` (10 failures). */
function trip(b: CircuitBreaker): void {
  send(b, 10, false);
  assert.equal(b.state, 'open');
}

test('circuit breaker opens after 50% failures over at least 10 requests and fails fast until openFor has passed', () => {
  const { b, c, changes } = breaker();
  assert.equal(send(b, 5, true), 5);
  assert.equal(send(b, 4, false), 4);
  assert.equal(b.state, 'closed', '4 failures of 9: below minimumRequests');
  assert.equal(send(b, 1, false), 1);
  assert.equal(b.state, 'open', '5 failures of 10');
  assert.deepEqual(changes, ['open']);
  c.t = 4_999;
  assert.equal(b.tryAcquire(), false);
  assert.equal(b.state, 'open');
  c.t = 5_000;
  assert.equal(b.tryAcquire(), true);
  assert.equal(b.state, 'half-open');
  assert.deepEqual(changes, ['open', 'half-open']);
});

test('circuit breaker does not open below minimumRequests, even when every request fails', () => {
  const { b, changes } = breaker();
  assert.equal(send(b, 9, false), 9);
  assert.equal(b.state, 'closed');
  assert.equal(b.tryAcquire(), true);
  b.record(true);
  assert.equal(b.state, 'open', '9 failures of 10 once the minimum is reached');
  assert.deepEqual(changes, ['open']);
});

test('circuit breaker opens at exactly failureRatio despite floating point (7 of 100 at 0.07)', () => {
  const { b } = breaker({ failureRatio: 0.07, minimumRequests: 100 });
  send(b, 93, true);
  send(b, 6, false);
  assert.equal(b.state, 'closed');
  send(b, 1, false);
  assert.equal(b.state, 'open', '0.07 × 100 is 7.000000000000001 in floating point; 7 / 100 is 0.07');
});

test('circuit breaker window slides: failures older than the window age out, recent ones still count', () => {
  // Failures at t=0, then successes 9 s later: all inside the 10 s window, 5 of 10 failed.
  const recent = breaker();
  send(recent.b, 5, false);
  recent.c.t = 9_000;
  send(recent.b, 5, true);
  assert.equal(recent.b.state, 'open');

  // The same 10 outcomes with the successes 10 s later: the failures have left the window.
  const aged = breaker();
  send(aged.b, 5, false);
  aged.c.t = 10_000;
  send(aged.b, 5, true);
  assert.equal(aged.b.state, 'closed');
  send(aged.b, 4, false);
  assert.equal(aged.b.state, 'closed', '4 failures of 9 in the window');
  send(aged.b, 1, false);
  assert.equal(aged.b.state, 'open', '5 failures of 10 in the window');
});

test('circuit breaker ignores outcomes reported while open (requests admitted before it opened)', () => {
  const { b, c } = breaker();
  trip(b);
  b.record(true);
  b.record(true);
  b.record(false);
  assert.equal(b.state, 'open');
  c.t = 5_000;
  assert.equal(b.state, 'half-open', 'the late failure did not extend openFor');
});

test('circuit breaker half-open admits exactly halfOpenRequests probes until they report', () => {
  const { b, c } = breaker({ halfOpenRequests: 3 });
  trip(b);
  c.t = 5_000;
  const admitted = [b.tryAcquire(), b.tryAcquire(), b.tryAcquire(), b.tryAcquire(), b.tryAcquire()];
  assert.deepEqual(admitted, [true, true, true, false, false]);
  b.record(true);
  assert.equal(b.state, 'half-open', 'one success of three');
  assert.equal(b.tryAcquire(), false, 'a finished probe does not free a slot: three probes per half-open phase');
});

test('circuit breaker closes after halfOpenRequests successes, with a fresh window', () => {
  const { b, c, changes } = breaker();
  trip(b);
  c.t = 5_000;
  assert.equal(b.tryAcquire(), true);
  assert.equal(b.tryAcquire(), true);
  b.record(true);
  assert.equal(b.state, 'half-open');
  b.record(true);
  assert.equal(b.state, 'closed');
  assert.deepEqual(changes, ['open', 'half-open', 'closed']);
  assert.equal(b.retryAfterSeconds(), 0);
  // The 10 failures that opened it are gone: 9 new ones are below minimumRequests.
  assert.equal(send(b, 9, false), 9);
  assert.equal(b.state, 'closed');
});

test('circuit breaker reopens on a half-open failure, for twice as long each time up to maxOpenFor, and back to openFor once closed', () => {
  const { b, c, changes } = breaker({ maxOpenFor: 15_000 });
  trip(b); // at t=0, for 5 s
  const reopenAfter = (ms: number) => {
    c.t += ms - 1;
    assert.equal(b.tryAcquire(), false, `still open 1 ms before ${ms} ms`);
    c.t += 1;
    assert.equal(b.tryAcquire(), true, `half-open after ${ms} ms`);
  };
  reopenAfter(5_000);
  b.record(false);
  assert.equal(b.state, 'open');
  reopenAfter(10_000);
  b.record(false);
  reopenAfter(15_000); // 20 s capped at 15 s
  b.record(false);
  reopenAfter(15_000);
  b.record(true);
  assert.equal(b.tryAcquire(), true);
  b.record(true);
  assert.equal(b.state, 'closed');
  trip(b);
  reopenAfter(5_000);
  assert.deepEqual(changes.slice(0, 4), ['open', 'half-open', 'open', 'half-open']);
});

test('circuit breaker retryAfterSeconds: whole seconds left while open (at least 1), 1 when half-open, 0 when closed', () => {
  const { b, c } = breaker();
  assert.equal(b.retryAfterSeconds(), 0);
  trip(b);
  assert.equal(b.retryAfterSeconds(), 5);
  c.t = 1;
  assert.equal(b.retryAfterSeconds(), 5, '4.999 s rounds up');
  c.t = 3_000;
  assert.equal(b.retryAfterSeconds(), 2);
  c.t = 4_999.5;
  assert.equal(b.retryAfterSeconds(), 1);
  c.t = 5_000;
  assert.equal(b.retryAfterSeconds(), 1);
  assert.equal(b.state, 'half-open');
});

test('circuit breaker rejects options it cannot work with', () => {
  assert.throws(() => breaker({ failureRatio: 1.5 }), RangeError);
  assert.throws(() => breaker({ window: 0 }), RangeError);
  assert.throws(() => breaker({ halfOpenRequests: 0 }), RangeError);
});

/** How many retries the budget admits right now (they are then ended again). */
function retriesAllowed(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryStartRetry()) n++;
  for (let i = 0; i < n; i++) budget.retryEnded();
  return n;
}

test('retry budget allows max(minRetryConcurrency, 20% of active requests) retries: 3 at 0 and 10 active, 20 at 100', () => {
  const budget = new RetryBudget({ ratio: 0.2 });
  assert.equal(retriesAllowed(budget), 3);
  for (let i = 0; i < 10; i++) budget.requestStarted();
  assert.equal(retriesAllowed(budget), 3);
  for (let i = 0; i < 90; i++) budget.requestStarted();
  assert.equal(budget.activeRequests, 100);
  assert.equal(retriesAllowed(budget), 20);
  for (let i = 0; i < 100; i++) budget.requestEnded();
  assert.equal(retriesAllowed(budget), 3);
});

test('retry budget counts retries in flight: a finished retry frees a slot', () => {
  const budget = new RetryBudget({ ratio: 0.2 });
  for (let i = 0; i < 3; i++) assert.equal(budget.tryStartRetry(), true);
  assert.equal(budget.tryStartRetry(), false);
  assert.equal(budget.activeRetries, 3);
  budget.retryEnded();
  assert.equal(budget.tryStartRetry(), true);
  assert.equal(budget.tryStartRetry(), false);
});

test('retry budget counters never go negative, and minRetryConcurrency 0 allows no retry without traffic', () => {
  const budget = new RetryBudget({ ratio: 0.29, minRetryConcurrency: 0 });
  budget.requestEnded();
  budget.retryEnded();
  assert.equal(budget.activeRequests, 0);
  assert.equal(budget.activeRetries, 0);
  assert.equal(budget.tryStartRetry(), false);
  for (let i = 0; i < 100; i++) budget.requestStarted();
  assert.equal(retriesAllowed(budget), 29, '0.29 × 100 is 28.999999999999996 in floating point');
});

function detector(options: Partial<OutlierDetectorOptions> = {}, keys = ['a', 'b', 'c', 'd']) {
  const c = clock();
  const d = new OutlierDetector({
    consecutiveFailures: 3,
    ejectFor: 10_000,
    maxEjectedPercent: 50,
    now: c.now,
    ...options,
  });
  d.setTargets(keys);
  return { d, c };
}

/** Records `n` failures for `key`; returns what the last record returned. */
function fail(d: OutlierDetector, key: string, n: number): boolean {
  let changed = false;
  for (let i = 0; i < n; i++) changed = d.record(key, true);
  return changed;
}

test('outlier detector ejects a target after consecutiveFailures failures in a row; a success resets the count', () => {
  const { d } = detector();
  assert.equal(fail(d, 'a', 2), false);
  assert.equal(d.record('a', false), false);
  assert.equal(fail(d, 'a', 2), false);
  assert.equal(d.isEjected('a'), false, '2 + 2 failures with a success between');
  assert.equal(d.record('a', true), true, 'the third in a row ejects it');
  assert.equal(d.isEjected('a'), true);
  assert.equal(d.isEjected('b'), false);
  assert.equal(d.ejectedCount, 1);
});

test('outlier detector returns an ejected target once ejectFor has passed, and nextReturnAt says when', () => {
  const { d, c } = detector();
  assert.equal(d.nextReturnAt(), undefined);
  fail(d, 'a', 3);
  c.t = 2_000;
  fail(d, 'b', 3);
  assert.equal(d.nextReturnAt(), 10_000);
  assert.equal(fail(d, 'a', 5), false, 'outcomes of requests sent before the ejection are ignored');
  c.t = 9_999;
  assert.equal(d.isEjected('a'), true);
  c.t = 10_000;
  assert.equal(d.isEjected('a'), false);
  assert.equal(d.ejectedCount, 1);
  assert.equal(d.nextReturnAt(), 12_000);
  c.t = 12_000;
  assert.equal(d.nextReturnAt(), undefined);
  assert.equal(d.ejectedCount, 0);
  assert.equal(fail(d, 'a', 2), false, 'its count started again from zero');
});

test('outlier detector: record reports the return of a target whose time has passed', () => {
  const { d, c } = detector();
  fail(d, 'a', 3);
  c.t = 10_000;
  assert.equal(d.record('a', false), true);
  assert.equal(d.isEjected('a'), false);
  assert.equal(d.record('a', false), false);
});

test('outlier detector ejects for ejectFor × ejections in a row, capped at 300 s, and the multiplier decays by one per ejectFor spent back in rotation', () => {
  const { d, c } = detector({ ejectFor: 100_000 });
  const ejectNow = (): number => {
    assert.equal(fail(d, 'a', 3), true);
    return d.nextReturnAt()! - c.t;
  };
  assert.equal(ejectNow(), 100_000);
  c.t += 100_000;
  assert.equal(ejectNow(), 200_000);
  c.t += 200_000;
  assert.equal(ejectNow(), 300_000);
  c.t += 300_000;
  assert.equal(ejectNow(), 300_000, '4 × 100 s capped at 300 s (the multiplier stays at 3)');
  c.t += 300_000 + 250_000; // 2.5 ejectFor back in rotation: the multiplier 3 decays to 1
  assert.equal(ejectNow(), 200_000, '(1 + 1) × 100 s');
  c.t += 200_000 + 1_000_000;
  assert.equal(ejectNow(), 100_000, 'fully decayed');
});

test('outlier detector never ejects more than maxEjectedPercent: 4 targets at 50% → at most 2 ejected', () => {
  const { d, c } = detector();
  assert.equal(fail(d, 'a', 3), true);
  assert.equal(fail(d, 'b', 3), true);
  assert.equal(fail(d, 'c', 3), false);
  assert.equal(fail(d, 'c', 10), false);
  assert.equal(d.isEjected('c'), false);
  assert.equal(d.ejectedCount, 2);
  c.t = 10_000; // a and b return
  assert.equal(d.record('c', true), true, "c's count was kept: its next failure ejects it");
  assert.equal(d.ejectedCount, 1);
});

test('outlier detector with one target ejects it only at maxEjectedPercent 100; with two, 50% allows one ejection', () => {
  const one = detector({ maxEjectedPercent: 99 }, ['a']);
  assert.equal(fail(one.d, 'a', 3), false);
  const all = detector({ maxEjectedPercent: 100 }, ['a']);
  assert.equal(fail(all.d, 'a', 3), true);
  const two = detector({ maxEjectedPercent: 50 }, ['a', 'b']);
  assert.equal(fail(two.d, 'a', 3), true);
  assert.equal(fail(two.d, 'b', 3), false);
  const three = detector({ maxEjectedPercent: 30 }, ['a', 'b', 'c']);
  assert.equal(fail(three.d, 'a', 3), false, '1 of 3 is 33% > 30%');
});

test('outlier detector setTargets keeps the state of kept targets and forgets removed ones', () => {
  const { d, c } = detector({}, ['a', 'b']);
  fail(d, 'a', 2);
  assert.equal(fail(d, 'b', 3), true);
  c.t = 10_000;
  assert.equal(fail(d, 'b', 3), true, 'second ejection: 20 s');
  d.setTargets(['a', 'c']);
  assert.equal(d.ejectedCount, 0);
  assert.equal(d.isEjected('b'), false);
  assert.equal(d.record('b', true), false, 'an outcome for a removed target is ignored');
  assert.equal(fail(d, 'a', 1), true, "a's two failures were kept");
  d.setTargets(['a', 'b', 'c', 'a']);
  assert.equal(d.ejectedCount, 1, 'a stays ejected; the duplicate key counts once');
  assert.equal(fail(d, 'b', 2), false, 'b came back with a fresh count');
  assert.equal(fail(d, 'b', 1), false, '2 of 3 targets would exceed 50%');
  c.t = 20_000; // a returns
  assert.equal(fail(d, 'b', 1), true);
  assert.equal(d.nextReturnAt(), 30_000, 'a fresh multiplier: ejectFor × 1');
});

test('outlier detector rejects options it cannot work with', () => {
  assert.throws(() => detector({ ejectFor: 0 }), RangeError);
  assert.throws(() => detector({ consecutiveFailures: 0 }), RangeError);
});
