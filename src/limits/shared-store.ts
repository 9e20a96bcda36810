// The seam between limit plugins and where their counters live. `memory` counters must mean the same with 1 or N
// workers (as NGINX's shared zones), so in a worker they live in the primary and are reached over IPC; in one
// process they are local. `redis` counters are shared by every instance.

/** One limit: `requests` per `per` milliseconds. */
export interface LimitSpec {
  readonly requests: number;
  readonly per: number;
}

/** What a rate-limit check decided, for the 429 and the RateLimit headers. */
export interface RateDecision {
  readonly allowed: boolean;
  /** Per limit (same order as the specs): requests left in the current window, and ms until one more is free. */
  readonly remaining: readonly number[];
  readonly resetMs: readonly number[];
  /** When denied: ms until the request would be allowed (for Retry-After). */
  readonly retryAfterMs: number;
}

export interface RateStore {
  /**
   * Counts one request against every limit of `key` atomically: allowed only if every limit allows it, and then
   * counted in all of them (a denied request counts in none). Rejects (never hangs) when the store is unreachable.
   */
  consume(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> | RateDecision;
  /**
   * What `consume` would decide now, changing nothing (`turnpike explain`): `allowed` as it would say, `remaining`
   * the requests that would pass now, this one included (the same fields otherwise). Rejects when unreachable.
   */
  peek(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> | RateDecision;
}

/** Concurrency slots shared by an instance: `acquire` resolves true when a slot was taken, false on timeout. */
export interface ConcurrencyStore {
  acquire(key: string, max: number, queue: number, queueTimeoutMs: number): Promise<boolean> | boolean;
  release(key: string): void;
}
