// Retry budget per upstream (Envoy's retry_budget): retries in flight are capped at a share of the requests in
// flight, so when an upstream fails everything, retries add at most `ratio` more load instead of multiplying
// it (a fixed "retry twice" triples it). The floor lets a quiet upstream still retry its few failures.
export interface RetryBudgetOptions {
  /** Concurrent retries allowed per active request, e.g. 0.2 = 20 %. */
  readonly ratio: number;
  /** Concurrent retries always allowed, however few requests are active. Default 3. */
  readonly minRetryConcurrency?: number;
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly minRetryConcurrency: number;
  private requests = 0;
  private retries = 0;

  constructor(options: RetryBudgetOptions) {
    this.ratio = options.ratio;
    this.minRetryConcurrency = options.minRetryConcurrency ?? 3;
  }

  get activeRequests(): number {
    return this.requests;
  }

  get activeRetries(): number {
    return this.retries;
  }

  /** Once per client request proxied to this upstream (retries are counted apart, by tryStartRetry). */
  requestStarted(): void {
    this.requests++;
  }

  requestEnded(): void {
    if (this.requests > 0) this.requests--; // an unmatched end must not lower the budget of later requests
  }

  /** True (and counted) when one more retry fits the budget; the caller then calls retryEnded once. */
  tryStartRetry(): boolean {
    // The epsilon keeps 0.29 × 100 (28.999999999999996 in floating point) at 29.
    const max = Math.max(this.minRetryConcurrency, Math.floor(this.ratio * this.requests + 1e-9));
    if (this.retries >= max) return false;
    this.retries++;
    return true;
  }

  retryEnded(): void {
    if (this.retries > 0) this.retries--;
  }
}
