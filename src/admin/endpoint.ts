// The admin listener's seam: each endpoint (health, the API, /metrics, the dashboard) is a value in its own file
// under src/admin/endpoints/, listed in src/admin/endpoints/registry.ts; the admin server routes to them, checks
// the token when `auth` says so, and turns a throw into a 500 problem+json. An endpoint reads the gateway through
// `AdminContext`, never through globals.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { MetricsSource } from '../observability/metrics-source.ts';
import type { z } from 'zod';
import type { Runtime } from '../runtime/runtime.ts';
import type { AdminOp } from './admin-ops.ts';
import type { FeedEvent } from './event-feed.ts';

export type { MetricsScrape, MetricsSource } from '../observability/metrics-source.ts';

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The workers of a multi-worker instance, as the primary's admin listener reaches them (over IPC). */
export interface AdminWorkers {
  /** Runs `op` in every worker; resolves with their answers, or rejects with the first worker's error. */
  all(op: AdminOp): Promise<unknown[]>;
  /**
   * Runs a read-only `op` in every worker; resolves with the answers of those that answered within `timeoutMs`
   * (one that fails or is late is left out) and how many were asked.
   */
  some(op: AdminOp, timeoutMs?: number): Promise<{ answers: unknown[]; asked: number }>;
  /** Runs a read-only `op` in one worker (an explanation: each worker would answer it alike). */
  one(op: AdminOp): Promise<unknown>;
  /** Calls `listener` with every worker's events until the returned function is called. */
  feed(listener: (event: FeedEvent) => void): () => void;
}

export interface AdminContext {
  readonly log: Logger;
  /** Null when `metrics.enabled` is false (GET /metrics is then 404). */
  readonly metrics: MetricsSource | null;
  /** The running gateway (its snapshot, upstream state, caches); null until it has started, and in a multi-worker primary. */
  readonly runtime: () => Runtime | null;
  /** The workers, when this process is the primary of a multi-worker instance; null otherwise. */
  readonly workers: AdminWorkers | null;
  /** Reloads the config file (as SIGHUP does); null when the gateway was started from text. */
  readonly reload: (() => Promise<{ readonly ok: boolean; readonly error?: string }>) | null;
  /** Config loaded and every listener bound, and not draining (GET /readyz). */
  readonly ready: () => boolean;
  /** Every endpoint the admin listener serves (the OpenAPI document lists them). */
  readonly endpoints: readonly AdminEndpoint[];
  /** Writes the audit line of a mutating call: who (a short hash of the token, the address) and what. */
  readonly audit: (req: IncomingMessage, action: string, fields?: object) => void;
}

export interface AdminEndpoint {
  readonly method: AdminMethod;
  /** A find-my-way path: `/api/upstreams/:name/targets/:target/drain`. */
  readonly path: string;
  /** `none`: probes and scrapers (/healthz, /readyz, /metrics); `token`: one of `admin.auth.tokens` when set. */
  readonly auth: 'none' | 'token';
  /** One line for the OpenAPI document. */
  readonly summary?: string;
  /** The JSON body this call takes (validated with it; the OpenAPI document shows it). */
  readonly body?: z.ZodType;
  /** A long-lived response (Server-Sent Events): the listener ends it when a reload moves or removes it. */
  readonly stream?: boolean;
  /** The query parameters it reads (the OpenAPI document lists them). */
  readonly query?: readonly string[];
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    params: Readonly<Record<string, string | undefined>>,
    admin: AdminContext,
  ): void | Promise<void>;
}

export function defineAdminEndpoint(endpoint: AdminEndpoint): AdminEndpoint {
  return endpoint;
}
