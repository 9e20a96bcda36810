// Metrics of a multi-worker instance: each worker sends its primary the values of its registry about once a
// second, and at once when a breaker changes state or a reload ends (state a scrape should not see late); the
// primary's GET /metrics answers with prom-client's AggregatorRegistry over the latest values of every live
// worker: counters and histograms summed, state gauges by their own aggregator (breaker state max, health,
// config and build info first), so the names are those of a single process.
import type { Channel } from 'node:diagnostics_channel';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { MetricsScrape, MetricsSource } from './metrics-source.ts';
import { CHANNELS, type Gateway } from './events.ts';
import { formatMetrics, OPENMETRICS_TEXT, PROMETHEUS_TEXT, wantsOpenMetrics } from './metrics-format.ts';
import type { GatewayMetrics } from './metrics.ts';

type Families = MetricObjectWithValues<MetricValue<string>>[];

/** What a worker sends: its registry's values (prom-client's JSON form). */
export interface MetricsReport {
  readonly type: 'metrics';
  readonly families: unknown[];
}

const REPORT_INTERVAL_MS = 1000;

/** In a worker: reports `metrics()` (null while metrics are off) to the primary. Returns the stop. */
export function reportWorkerMetrics(
  gateway: Gateway,
  metrics: () => GatewayMetrics | null,
  send: (m: MetricsReport) => void,
): () => void {
  let pending = false;
  const report = () => {
    pending = false;
    const m = metrics();
    if (m === null) return;
    void m.snapshot().then(
      (families) => send({ type: 'metrics', families }),
      () => undefined, // a collect callback failed: the next report tries again
    );
  };
  const soon = (event: unknown) => {
    if ((event as { gateway?: Gateway }).gateway !== gateway || pending) return;
    pending = true;
    // After the event's other subscribers (the metrics themselves) have seen it.
    setImmediate(report);
  };
  const timer = setInterval(report, REPORT_INTERVAL_MS).unref();
  const urgent: Channel[] = [CHANNELS.breaker, CHANNELS.reload, CHANNELS.health];
  for (const ch of urgent) ch.subscribe(soon);
  return () => {
    clearInterval(timer);
    for (const ch of urgent) ch.unsubscribe(soon);
  };
}

/** In the primary: the instance's metrics, from the workers' latest reports. */
export class PrimaryMetrics implements MetricsSource {
  private readonly reports = new Map<number, Families>();
  /** What the primary counts itself (discovery runs there), added to the workers' reports. */
  private readonly own: readonly Registry[];

  constructor(own: readonly Registry[] = []) {
    this.own = own;
  }

  receive(workerId: number, report: MetricsReport): void {
    this.reports.set(workerId, report.families as Families);
  }

  /** A worker exited: its counts leave the sum (Prometheus sees a counter reset, as on any restart). */
  forget(workerId: number): void {
    this.reports.delete(workerId);
  }

  get workers(): number {
    return this.reports.size;
  }

  async scrape(accept: string | undefined): Promise<MetricsScrape> {
    const openMetrics = wantsOpenMetrics(accept);
    const own = await Promise.all(this.own.map((r) => r.getMetricsAsJSON()));
    const aggregated = AggregatorRegistry.aggregate([...this.reports.values(), ...own] as never);
    const families = await aggregated.getMetricsAsJSON();
    return {
      contentType: openMetrics ? OPENMETRICS_TEXT : PROMETHEUS_TEXT,
      body: formatMetrics(families, openMetrics),
    };
  }
}
