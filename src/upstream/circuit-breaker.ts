// Circuit breaker per upstream (closed → open → half-open → closed, as Resilience4j and Polly): while an
// upstream fails most of its requests, fail fast rather than pile more onto it, then probe it with a few.
// The per-request path (tryAcquire, record) allocates nothing: the window is two fixed typed arrays.
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Share of failures (0..1) over the window at which it opens. */
  readonly failureRatio: number;
  /** Outcomes the window must hold before the ratio counts, so a few early failures do not open it. */
  readonly minimumRequests: number;
  /** Length of the sliding window, ms. */
  readonly window: number;
  /** How long it stays open before probing, ms. Doubles on each reopen before it closes again. */
  readonly openFor: number;
  /** Cap of the doubling, ms. Default 8 × openFor. */
  readonly maxOpenFor?: number;
  /** Probes let through when half-open; this many successes close it, one failure reopens it. */
  readonly halfOpenRequests: number;
  /** Clock in ms; injectable so tests simulate time. Default performance.now. */
  readonly now?: () => number;
}

// The window is BUCKETS slices of window/BUCKETS: an outcome ages out between 0.9 and 1 window after it.
const BUCKETS = 10;

export class CircuitBreaker {
  /** Called on every transition (logging, metrics). */
  onStateChange: ((state: BreakerState) => void) | undefined = undefined;

  private readonly failureRatio: number;
  private readonly minimumRequests: number;
  private readonly bucketMs: number;
  private readonly openFor: number;
  private readonly maxOpenFor: number;
  private readonly halfOpenRequests: number;
  private readonly now: () => number;

  private current: BreakerState = 'closed';
  private readonly outcomes = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);
  private head: number; // absolute bucket number (time / bucketMs) of the newest bucket
  private total = 0; // sums over the buckets, kept so a record is O(1)
  private failed = 0;
  private openUntil = 0;
  private reopens = 0; // opens since it last closed: the exponent of openFor's growth
  private probes = 0; // half-open: probes admitted
  private successes = 0; // half-open: outcomes that succeeded

  constructor(options: CircuitBreakerOptions) {
    const { failureRatio, minimumRequests, window, openFor, halfOpenRequests } = options;
    if (!(failureRatio >= 0 && failureRatio <= 1 && window > 0 && openFor >= 0 && halfOpenRequests >= 1)) {
      throw new RangeError('circuit breaker: needs failureRatio 0..1, window > 0, openFor >= 0, halfOpenRequests >= 1');
    }
    this.failureRatio = failureRatio;
    this.minimumRequests = minimumRequests;
    this.bucketMs = window / BUCKETS;
    this.openFor = openFor;
    this.maxOpenFor = Math.max(openFor, options.maxOpenFor ?? openFor * 8);
    this.halfOpenRequests = halfOpenRequests;
    this.now = options.now ?? (() => performance.now());
    this.head = Math.floor(this.now() / this.bucketMs);
  }

  /** The state now; an open breaker whose openFor has passed turns half-open here (lazily, no timer). */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() >= this.openUntil) this.transition('half-open');
    return this.current;
  }

  /** Call before a request. True: send it, then call `record` exactly once. False: fail fast. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probes >= this.halfOpenRequests) return false;
    this.probes++;
    return true;
  }

  record(ok: boolean): void {
    if (this.current === 'closed') {
      const now = this.now();
      this.roll(now);
      const j = slot(this.head);
      this.outcomes[j]++;
      this.total++;
      if (!ok) {
        this.failures[j]++;
        this.failed++;
      }
      // Divide, not multiply: 7 / 100 >= 0.07 holds, 7 >= 0.07 * 100 (7.000000000000001) does not.
      if (this.total >= this.minimumRequests && this.failed / this.total >= this.failureRatio) this.open(now);
    } else if (this.current === 'half-open') {
      // Any outcome reported now is fresh evidence, a probe's or not (record carries no token to tell).
      if (!ok) this.open(this.now());
      else if (++this.successes >= this.halfOpenRequests) this.close();
    }
    // Open: the outcome of a request admitted before it opened; the decision is already taken.
  }

  /** Whole seconds until it may half-open (for Retry-After): >= 1 while open or half-open, 0 when closed. */
  retryAfterSeconds(): number {
    const state = this.state;
    if (state === 'open') return Math.max(1, Math.ceil((this.openUntil - this.now()) / 1000));
    return state === 'half-open' ? 1 : 0; // half-open refuses only while its probes are out: try again soon
  }

  private open(now: number): void {
    this.openUntil = now + Math.min(this.maxOpenFor, this.openFor * 2 ** this.reopens);
    if (this.reopens < 30) this.reopens++;
    this.transition('open');
  }

  private close(): void {
    this.outcomes.fill(0);
    this.failures.fill(0);
    this.total = this.failed = 0;
    this.head = Math.floor(this.now() / this.bucketMs);
    this.reopens = 0;
    this.transition('closed');
  }

  private transition(state: BreakerState): void {
    this.current = state;
    this.probes = this.successes = 0;
    this.onStateChange?.(state);
  }

  /** Clears the buckets that time has left behind since the newest one. */
  private roll(now: number): void {
    const bucket = Math.floor(now / this.bucketMs);
    const gap = Math.min(bucket - this.head, BUCKETS);
    if (gap <= 0) return; // same bucket (or a clock that went back: keep counting into the newest)
    for (let i = 1; i <= gap; i++) {
      const j = slot(this.head + i);
      this.total -= this.outcomes[j];
      this.failed -= this.failures[j];
      this.outcomes[j] = this.failures[j] = 0;
    }
    this.head = bucket;
  }
}

const slot = (bucket: number): number => ((bucket % BUCKETS) + BUCKETS) % BUCKETS;
