// One line per request through pino's asynchronous destination (SonicBoom: buffered, written in 4 KiB batches
// off the hot path). Lines are made by the writer compiled from `accessLog` (access-log-format.ts) instead of
// through a pino logger: the access log is the one log written per request, and a generic object serialiser
// plus a fresh ISO timestamp per line cost ~5 % of a proxied request's CPU (profile of 2026-11-22).
//
// A file that cannot be written at run time (disk full, folder removed, permissions changed) must not stop the
// gateway: the destination is dropped with one logged error, lines are counted as lost meanwhile, and the file
// is opened again every few seconds until writes succeed (no retry loop, nothing buffered without bound).
import pino from 'pino';
import type { AccessLogSettings } from '../config/access-log-schema.ts';
import type { RequestContext } from '../request-context.ts';
import { compileLineFormat, isoNow, type LineFormat } from './access-log-format.ts';
import type { L4SessionEvent, RefusalEvent } from './events.ts';

export interface AccessLogConfig {
  readonly enabled: boolean;
  /** stdout, stderr or an absolute file path. */
  readonly output: string;
}

/** Where the access log reports its own trouble (the gateway log). */
export interface AccessLogReport {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

type Destination = pino.DestinationStream & {
  fd?: number;
  flush?: () => void;
  flushSync?: () => void;
  end?: () => void;
  destroy?: () => void;
  reopen?: () => void;
  on?: (event: string, listener: (err: Error) => void) => void;
  once?: (event: string, listener: () => void) => void;
};

/** How long a failed file rests before it is opened again. */
const RETRY_MS = 5000;
const noop = () => undefined;

export class AccessLog {
  readonly output: string;
  private destination: Destination | null = null;
  private readonly flushTimer: NodeJS.Timeout | null;
  private format: LineFormat;
  private readonly report: AccessLogReport;
  /** Since when the file has been unwritable (0: it is fine), and the lines lost meanwhile. */
  private failedAt = 0;
  private lost = 0;
  private closed = false;

  constructor(config: AccessLogConfig, settings: AccessLogSettings, report: AccessLogReport) {
    this.output = config.enabled ? config.output : 'off';
    this.format = compileLineFormat(settings);
    this.report = report;
    if (!config.enabled) {
      this.flushTimer = null;
      return;
    }
    this.open();
    // A quiet gateway still gets its lines out within a second; a failed file is tried again from here.
    this.flushTimer = setInterval(() => this.tick(), 1000).unref();
  }

  /** The fields, format and skip rules of a new config (the file stays open). */
  configure(settings: AccessLogSettings): void {
    this.format = compileLineFormat(settings);
  }

  private open(): void {
    const output = this.output;
    const dest = output === 'stdout' ? 1 : output === 'stderr' ? 2 : output;
    const destination = pino.destination({ dest, sync: false, minLength: 4096, mkdir: true }) as Destination;
    destination.on?.('error', (err) => this.fail(destination, err));
    destination.on?.('write', () => this.recovered());
    this.destination = destination;
  }

  /** A write or an open failed: drop this destination (as pino itself does on EPIPE) and say so once. */
  private fail(destination: Destination, err: Error): void {
    if (destination !== this.destination) return;
    this.destination = null;
    const firstFailure = this.failedAt === 0;
    this.failedAt = Date.now();
    const fd = destination.fd ?? -1;
    try {
      if (fd >= 0) destination.destroy?.();
    } catch {
      // already closing
    }
    // Its exit hook would otherwise retry the lost bytes forever (SonicBoom's flushSync sleeps and retries).
    Object.assign(destination, { write: noop, flush: noop, flushSync: noop, end: noop, destroy: noop, reopen: noop });
    if (firstFailure)
      this.report.error(
        { output: this.output, error: err.message, code: (err as NodeJS.ErrnoException).code },
        'access log cannot be written; serving goes on and its lines are lost until the file can be written again',
      );
  }

  private tick(): void {
    if (this.closed) return;
    if (this.destination === null) {
      if (Date.now() - this.failedAt >= RETRY_MS) this.open();
      return;
    }
    try {
      this.destination.flush?.();
    } catch {
      // not open yet
    }
  }

  /** A write went through after a failure: the file is back; say what was lost meanwhile. */
  private recovered(): void {
    if (this.failedAt === 0) return;
    const lost = this.lost;
    this.failedAt = 0;
    this.lost = 0;
    this.report.info({ output: this.output, lost }, 'access log written again');
  }

  private put(line: string): void {
    const destination = this.destination;
    if (destination === null) this.lost++;
    else destination.write(line);
  }

  write(ctx: RequestContext): void {
    if (this.output === 'off') return;
    const line = this.format.request(ctx);
    if (line !== null) this.put(line);
  }

  /** One line per TCP connection or UDP client mapping, when it ends (json format only). */
  writeL4(e: L4SessionEvent): void {
    if (this.output === 'off' || !this.format.json) return;
    let line =
      `{"level":"info","time":"${isoNow()}","listener":${JSON.stringify(e.listener)},"protocol":"${e.protocol}","clientIp":"${e.clientIp}",` +
      `"upstream":${JSON.stringify(e.upstream)}`;
    if (e.target !== null) line += `,"target":${JSON.stringify(e.target)}`;
    line += `,"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut},"durationMs":${Math.round(e.durationMs * 1000) / 1000}`;
    if (e.error !== null) line += `,"error":"${e.error}"`;
    this.put(line + '}\n');
  }

  /** One line per client refused before it had a request (its address and the code, nothing it sent). */
  writeRefusal(e: RefusalEvent): void {
    if (this.output === 'off') return;
    this.put(this.format.refusal(e));
  }

  /** Opens the file again under its name (logrotate moved it away): SIGUSR1. Standard streams stay as they are. */
  reopen(): void {
    if (this.output === 'off' || this.output === 'stdout' || this.output === 'stderr') return;
    const destination = this.destination;
    if (destination === null) {
      this.open();
      return;
    }
    try {
      destination.reopen?.();
    } catch (err) {
      this.fail(destination, err as Error);
    }
  }

  /** Writes out what is buffered and closes the file; resolves once it is closed (the file may still be
   *  opening when a gateway stops right after it started, so this must wait, or the last lines are lost). */
  close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    const destination = this.destination;
    if (destination === null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // A write that never finishes (a stuck disk) must not hold the exit: give up on its bytes.
        Object.assign(destination, { flushSync: noop, end: noop });
        resolve();
      }, 5000);
      timer.unref();
      destination.once?.('close', () => {
        clearTimeout(timer);
        resolve();
      });
      destination.on?.('error', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        destination.end?.();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
