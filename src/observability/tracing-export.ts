// The OTLP exporter behind a reporter: a failed export (an unreachable collector) is one warn line per minute at
// most, with the number of batches lost since the last line, in the gateway log. Requests never wait on it: the
// BatchSpanProcessor exports off the request path and drops what does not fit its queue.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

export type WarnFn = (fields: object, message: string) => void;

const REPORT_EVERY_MS = 60_000;

export class ReportingExporter implements SpanExporter {
  private readonly inner: SpanExporter;
  private readonly endpoint: string;
  private readonly warn: WarnFn;
  private readonly now: () => number;
  private lastReport = -Infinity;
  /** Failed exports since the last line. */
  private failed = 0;

  constructor(inner: SpanExporter, endpoint: string, warn: WarnFn, now: () => number = Date.now) {
    this.inner = inner;
    this.endpoint = endpoint;
    this.warn = warn;
    this.now = now;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.failure(result.error, spans.length);
      done(result);
    });
  }

  private failure(error: Error | undefined, spans: number): void {
    this.failed++;
    const now = this.now();
    if (now - this.lastReport < REPORT_EVERY_MS) return;
    this.lastReport = now;
    const failedExports = this.failed;
    this.failed = 0;
    this.warn(
      { endpoint: this.endpoint, error: error?.message ?? 'export failed', failedExports, spans },
      'trace export failed; spans dropped (logged at most once a minute)',
    );
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
