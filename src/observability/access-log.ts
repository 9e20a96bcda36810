// One JSON line per request, written through pino's asynchronous destination (buffered, off the hot path).
import pino, { type Logger } from 'pino';
import type { RequestContext } from '../request-context.ts';

export interface AccessLogConfig {
  readonly enabled: boolean;
  readonly output: string;
}

export class AccessLog {
  readonly output: string;
  private readonly logger: Logger | null;
  private readonly destination: pino.DestinationStream & { flush?: () => void; flushSync?: () => void; end?: () => void } | null;
  private readonly flushTimer: NodeJS.Timeout | null;

  constructor(config: AccessLogConfig) {
    this.output = config.enabled ? config.output : 'off';
    if (!config.enabled) {
      this.logger = null;
      this.destination = null;
      this.flushTimer = null;
      return;
    }
    const dest = config.output === 'stdout' ? 1 : config.output === 'stderr' ? 2 : config.output;
    this.destination = pino.destination({ dest, sync: false, minLength: 4096, mkdir: true });
    this.logger = pino(
      { base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg', formatters: { level: (label: string) => ({ level: label }) } },
      this.destination,
    );
    // Lines are written in 4 KiB batches; a quiet gateway still gets its lines out within a second.
    this.flushTimer = setInterval(() => {
      try {
        this.destination?.flush?.();
      } catch {
        // not open yet
      }
    }, 1000).unref();
  }

  write(ctx: RequestContext): void {
    const logger = this.logger;
    if (logger === null) return;
    const req = ctx.req;
    logger.info({
      requestId: ctx.requestId,
      clientIp: ctx.clientIp,
      method: req.method,
      host: ctx.host,
      path: req.url,
      route: ctx.routeName,
      upstream: ctx.upstreamName || undefined,
      target: ctx.target || undefined,
      status: ctx.status,
      bytesIn: ctx.bytesIn,
      bytesOut: ctx.bytesOut,
      durationMs: Math.round((performance.now() - ctx.startTime) * 1000) / 1000,
      error: ctx.errorCode || undefined,
    });
  }

  flush(): void {
    try {
      this.destination?.flushSync?.();
    } catch {
      // Not ready yet (still opening): nothing buffered to lose.
    }
  }

  close(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flush();
    this.destination?.end?.();
  }
}
