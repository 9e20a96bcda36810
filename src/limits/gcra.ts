// GCRA (generic cell rate algorithm, as redis-cell and Stripe's limiter use it): per limit one number, the
// theoretical arrival time (TAT). `requests` per `per` gives an emission interval T = per / requests and a burst of
// `requests` at once; after that, one request per T. No fixed windows, so no double burst at a window edge.
//
// Time is in integer microseconds and T is rounded down to a whole microsecond, so every comparison is exact
// integer arithmetic (a float T = 60000/7 ms would make the N-th request of a burst fail or the N+1-th pass by
// rounding). The burst tolerance is τ = (requests - 1) · T: exactly `requests` requests pass at one instant.
// Pure: the caller supplies the clock and the state; the memory store and the Redis Lua script share this logic.
import type { LimitSpec, RateDecision } from './shared-store.ts';

/** Emission interval in µs (at least 1). */
export function intervalUs(spec: LimitSpec): number {
  return Math.max(1, Math.floor((spec.per * 1000) / spec.requests));
}

/** Burst tolerance in µs: how far the TAT may run ahead of now and still admit a request. */
export function toleranceUs(spec: LimitSpec): number {
  return (spec.requests - 1) * intervalUs(spec);
}

/**
 * Counts one request at `nowUs` against every limit. `tats[i]` is limit i's TAT in µs (undefined or in the past =
 * a fresh limit). Allowed only if every limit allows it; then each TAT moves on by its T (`tats` is updated in
 * place). A denied request changes nothing.
 */
export function gcraConsume(tats: number[], nowUs: number, limits: readonly LimitSpec[]): RateDecision {
  const n = limits.length;
  const backlog = new Array<number>(n);
  let retryUs = 0;
  for (let i = 0; i < n; i++) {
    const tat = tats[i];
    const d = tat === undefined || tat < nowUs ? 0 : tat - nowUs;
    backlog[i] = d;
    const over = d - toleranceUs(limits[i]!);
    if (over > retryUs) retryUs = over;
  }
  const allowed = retryUs === 0;
  if (allowed) {
    for (let i = 0; i < n; i++) {
      const t = intervalUs(limits[i]!);
      backlog[i]! += t;
      tats[i] = nowUs + backlog[i]!;
    }
  }
  return decide(allowed, backlog, limits, retryUs);
}

/** What `gcraConsume` would decide at `nowUs`, changing nothing: `remaining` counts before this request. */
export function gcraPeek(tats: readonly number[], nowUs: number, limits: readonly LimitSpec[]): RateDecision {
  const backlog = limits.map((_, i) => {
    const tat = tats[i];
    return tat === undefined || tat < nowUs ? 0 : tat - nowUs;
  });
  return peekDecision(backlog, limits);
}

/** The peek's decision from each limit's backlog as it stands (shared with the Redis store's read-only script). */
export function peekDecision(backlogUs: readonly number[], limits: readonly LimitSpec[]): RateDecision {
  let retryUs = 0;
  for (let i = 0; i < limits.length; i++) retryUs = Math.max(retryUs, backlogUs[i]! - toleranceUs(limits[i]!));
  // After k requests at one instant a backlog is k·T, and decide() reads `requests - k` left: exactly what the
  // next request would find, itself included.
  return decide(retryUs === 0, backlogUs, limits, retryUs);
}

/**
 * The decision for the headers, from each limit's backlog (TAT - now, in µs) after the request was counted (or,
 * when denied, as it stands). Shared with the Redis store, whose script returns the backlogs.
 */
export function decide(
  allowed: boolean,
  backlogUs: readonly number[],
  limits: readonly LimitSpec[],
  retryUs: number,
): RateDecision {
  const n = limits.length;
  const remaining = new Array<number>(n);
  const resetMs = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const spec = limits[i]!;
    const t = intervalUs(spec);
    const slack = toleranceUs(spec) - backlogUs[i]!; // ≥ -T
    // Requests that would still pass now, one T apart: the k-th passes while backlog + (k-1)·T ≤ τ.
    const r = Math.min(spec.requests, Math.max(0, Math.floor(slack / t) + 1));
    remaining[i] = r;
    // Time until one more request is free: until `slack` reaches the next multiple of T (or 0 when none is left).
    const untilNext = r >= spec.requests ? 0 : r === 0 ? -slack : t - (((slack % t) + t) % t);
    resetMs[i] = Math.ceil(untilNext / 1000);
  }
  return { allowed, remaining, resetMs, retryAfterMs: allowed ? 0 : Math.ceil(retryUs / 1000) };
}

/** Longest time (ms) a key's state matters: after it every TAT is in the past and the key may be dropped. */
export function stateLifetimeMs(backlogUs: readonly number[]): number {
  let max = 0;
  for (const d of backlogUs) if (d > max) max = d;
  return Math.ceil(max / 1000);
}
