// The admin listener's seam: each endpoint (health, the API, /metrics, the dashboard) is a value in its own file
// under src/admin/endpoints/, listed in src/admin/endpoints/registry.ts; the admin server routes to them, checks
// the token when `auth` says so, and turns a throw into a 500 problem+json. An endpoint reads the gateway through
// `AdminContext`, never through globals.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What Prometheus scrapes: the text and its content type (Prometheus text, or OpenMetrics when `Accept` asks). */
export interface MetricsScrape {
  readonly contentType: string;
  readonly body: string;
}

/** The process's metrics (src/observability/metrics*.ts): a multi-worker primary answers with the workers' sum. */
export interface MetricsSource {
  scrape(accept: string | undefined): Promise<MetricsScrape>;
}

export interface AdminContext {
  readonly log: Logger;
  /** Null when `metrics.enabled` is false (GET /metrics is then 404). */
  readonly metrics: MetricsSource | null;
}

export interface AdminEndpoint {
  readonly method: AdminMethod;
  /** A find-my-way path: `/api/upstreams/:name/targets/:target/drain`. */
  readonly path: string;
  /** `none`: probes and scrapers (/healthz, /readyz, /metrics); `token`: one of `admin.auth.tokens` when set. */
  readonly auth: 'none' | 'token';
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
