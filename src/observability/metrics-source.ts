// What the admin listener's GET /metrics reads: a process's metrics (GatewayMetrics) or, in a multi-worker
// primary, the workers' aggregate (PrimaryMetrics). Defined here, beside its producers, so the admin side depends
// on observability and not the other way round.

/** What Prometheus scrapes: the text and its content type (Prometheus text, or OpenMetrics when `Accept` asks). */
export interface MetricsScrape {
  readonly contentType: string;
  readonly body: string;
}

/** The process's metrics (src/observability/metrics*.ts): a multi-worker primary answers with the workers' sum. */
export interface MetricsSource {
  scrape(accept: string | undefined): Promise<MetricsScrape>;
}
