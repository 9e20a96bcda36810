// When a failed attempt may be tried again. The rule that matters most: a request that may have reached a
// backend is retried only if its method is idempotent and its body (if any) was kept, so a POST is never sent
// twice. A connect failure never reached anyone and is safe to retry for any method.
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamConfig } from '../config/schema.ts';
import type { ErrorCode } from '../errors.ts';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly attempts: number;
  readonly on: ReadonlySet<string>;
  readonly backoff: number;
  /** Bodies up to this many bytes are kept for a retry (0: never buffer). */
  readonly bufferBody: number;
  /** A request with an Idempotency-Key header may be repeated whatever its method (the backend deduplicates). */
  readonly idempotencyKey: boolean;
}

/** Without `retries:` an upstream retries a connect failure once, on another target (NGINX does the same). */
const DEFAULT_POLICY: RetryPolicy = {
  attempts: 1,
  on: new Set(['connect-failure']),
  backoff: 0,
  bufferBody: 0,
  idempotencyKey: false,
};

export function compileRetryPolicy(config: UpstreamConfig): RetryPolicy {
  const r = config.retries;
  if (r === undefined) return DEFAULT_POLICY;
  return {
    attempts: r.attempts,
    on: r.on,
    backoff: r.backoff,
    bufferBody: r.bufferBody,
    idempotencyKey: r.idempotencyKey,
  };
}

export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Whether sending this request twice is safe: an idempotent method, or a key the backend deduplicates by. */
export function repeatable(policy: RetryPolicy, method: string, headers: IncomingHttpHeaders): boolean {
  return IDEMPOTENT_METHODS.has(method) || (policy.idempotencyKey && headers['idempotency-key'] !== undefined);
}

/** What went wrong in one attempt, in the words of `retries.on`. */
export type FailureKind = 'connect-failure' | 'reset' | 'timeout' | 'status';

export function failureKindOf(code: ErrorCode, undiciCode: string): FailureKind {
  // A refused TLS handshake never reached the backend's application: as safe to retry as a refused connect.
  if (code === 'TP_UPSTREAM_UNAVAILABLE' || code === 'TP_UPSTREAM_TLS' || undiciCode === 'UND_ERR_CONNECT_TIMEOUT')
    return 'connect-failure';
  if (code === 'TP_UPSTREAM_TIMEOUT') return 'timeout';
  return 'reset';
}

/** Whether a condition in `on` covers this failure (a status is matched by its number). */
export function covers(policy: RetryPolicy, kind: FailureKind, status: number): boolean {
  return kind === 'status' ? policy.on.has(String(status)) : policy.on.has(kind);
}

/** The wait before retry number `n` (1-based): exponential from `backoff`, capped at 10×, with jitter. */
export function backoffDelay(policy: RetryPolicy, n: number): number {
  if (policy.backoff <= 0) return 0;
  const ceiling = Math.min(policy.backoff * 2 ** (n - 1), policy.backoff * 10);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
