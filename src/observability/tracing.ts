// OpenTelemetry traces as a subscriber of the event stream: one server span per request (request start to end),
// one client span per upstream try (attempt start to end), made as SpanRecords (span-record.ts) and exported in
// batches over OTLP/HTTP (JSON) by the SDK's BatchSpanProcessor and OTLPTraceExporter, never on the request path.
// The client's W3C trace context is continued; each try carries the traceparent of its client span upstream
// (through AttemptStartEvent.headers), or a fresh not-sampled one when the trace is not recorded, so a backend's
// trace id matches the access log's. One Tracing per runtime and config; sampleRatio 0 makes none, so that costs
// nothing but the channels' empty subscriber checks.
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags, type SpanContext, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVICE_NAME,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders } from 'node:http';
import type { TracingConfig } from '../config/tracing-schema.ts';
import type { RequestContext } from '../request-context.ts';
import { CHANNELS, subscribeAll, type AttemptStartEvent, type Gateway, type RequestEvent } from './events.ts';
import { SpanRecord, type SpanSource } from './span-record.ts';
import { PooledIdGenerator } from './trace-ids.ts';
import { ReportingExporter, type WarnFn } from './tracing-export.ts';

/** What the trace of one recorded request holds between its events. */
interface RequestTrace {
  readonly server: SpanRecord;
  /** Client spans of tries not yet ended, by try number (a retry may start before the try it replaces ends). */
  attempts: Map<number, SpanRecord> | null;
}

const propagator = new W3CTraceContextPropagator();
/**
 * A request whose trace is not recorded (a new trace the ratio leaves out, or a client's traceparent without the
 * sampled flag) makes no span: this mark in `traces`, the trace id on the request, and each try's traceparent with
 * a fresh span id and the not-sampled flag. The client's tracestate goes upstream untouched.
 */
const UNSAMPLED = Symbol('unsampled');

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  get: (headers, key) => headers[key],
  keys: (headers) => Object.keys(headers),
};

export class Tracing {
  readonly config: NonNullable<TracingConfig>;
  private readonly gateway: Gateway;
  private readonly processor: BatchSpanProcessor;
  private readonly source: SpanSource;
  private readonly traces = new WeakMap<RequestContext, RequestTrace | typeof UNSAMPLED>();
  private readonly ids = new PooledIdGenerator();
  /**
   * New traces are decided on their trace id before any span exists, by the SDK's TraceIdRatioBasedSampler rule
   * (the id's four words XORed, below ratio x 2^32), so a trace id gets the same decision everywhere.
   */
  private readonly sampleBelow: number;
  private readonly unsubscribe: () => void;
  /** Requests started and not yet ended: a retired Tracing closes after the last. */
  private open = 0;
  private retiring: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  /** Starts tracing `gateway`'s requests per `config`; null when the config turns tracing off. */
  static start(gateway: Gateway, config: TracingConfig, warn: WarnFn): Tracing | null {
    if (config === undefined || config.sampleRatio === 0) return null;
    return new Tracing(gateway, config, warn);
  }

  private constructor(gateway: Gateway, config: NonNullable<TracingConfig>, warn: WarnFn) {
    this.gateway = gateway;
    this.config = config;
    const { endpoint, headers, timeout } = config.otlp;
    const exporter = new ReportingExporter(
      new OTLPTraceExporter({ url: endpoint, headers, timeoutMillis: timeout }),
      endpoint,
      warn,
    );
    this.sampleBelow = config.sampleRatio >= 1 ? 2 ** 32 : Math.floor(config.sampleRatio * (2 ** 32 - 1));
    this.source = {
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName })),
      scope: { name: 'turnpike' },
    };
    this.processor = new BatchSpanProcessor({
      exporter,
      scheduledDelayMillis: config.batchDelay,
      exportTimeoutMillis: timeout,
    });
    this.unsubscribe = subscribeAll([
      [CHANNELS.requestStart, this.onRequestStart],
      [CHANNELS.attemptStart, this.onAttemptStart],
      [CHANNELS.attemptEnd, this.onAttemptEnd],
      [CHANNELS.retry, this.onRetry],
      [CHANNELS.requestError, this.onRequestError],
      [CHANNELS.requestEnd, this.onRequestEnd],
    ]);
  }

  private readonly onRequestStart = (m: unknown): void => {
    const { ctx } = m as RequestEvent;
    if (ctx.gateway !== this.gateway) return;
    this.open++;
    const headers = ctx.req.headers;
    let parent: SpanContext | undefined;
    if (headers.traceparent !== undefined)
      parent = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, headers, headerGetter));
    let traceId: string;
    let sampled: boolean;
    if (parent !== undefined) {
      // The client's trace goes on, and its sampled flag decides (parent-based sampling).
      traceId = parent.traceId;
      sampled = (parent.traceFlags & TraceFlags.SAMPLED) !== 0;
    } else {
      // A tracestate belongs to its traceparent: without a valid one it is dropped (W3C), not sent beside ours.
      if (headers.tracestate !== undefined) ctx.removeRequestHeader('tracestate');
      traceId = this.ids.generateTraceId();
      sampled = this.ids.lastTraceWord < this.sampleBelow;
    }
    ctx.traceId = traceId;
    if (!sampled) {
      this.traces.set(ctx, UNSAMPLED);
      return;
    }
    const method = ctx.req.method ?? 'GET';
    const server = new SpanRecord(
      this.source,
      SpanKind.SERVER,
      method,
      traceId,
      this.ids.generateSpanId(),
      parent,
      ctx.startTime,
      {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_PATH]: ctx.path,
        [ATTR_URL_SCHEME]: ctx.scheme,
        [ATTR_SERVER_ADDRESS]: ctx.host,
        [ATTR_CLIENT_ADDRESS]: ctx.clientIp,
      },
    );
    this.traces.set(ctx, { server, attempts: null });
  };

  private readonly onAttemptStart = (m: unknown): void => {
    const event = m as AttemptStartEvent;
    const ctx = event.ctx;
    const t = this.traces.get(ctx);
    if (t === undefined) return;
    if (t === UNSAMPLED) {
      event.headers.push('traceparent', `00-${ctx.traceId}-${this.ids.generateSpanId()}-00`);
      return;
    }
    const method = event.method;
    const attributes: Record<string, string | number> = {
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_URL_FULL]: event.target + event.path,
      'turnpike.target': event.target,
      'turnpike.attempt': event.attempt,
    };
    if (event.resend > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = event.resend;
    const server = t.server;
    const client = new SpanRecord(
      this.source,
      SpanKind.CLIENT,
      method,
      ctx.traceId!,
      this.ids.generateSpanId(),
      server.spanContext(),
      performance.now(),
      attributes,
    );
    (t.attempts ??= new Map()).set(event.attempt, client);
    event.headers.push('traceparent', `00-${ctx.traceId}-${client.spanContext().spanId}-01`);
  };

  private readonly onAttemptEnd = (m: unknown): void => {
    const { ctx, attempt, status, failure } = m as RequestEvent & {
      attempt: number;
      status: number;
      failure: string | null;
    };
    const t = this.traces.get(ctx);
    if (t === undefined || t === UNSAMPLED) return;
    const client = t.attempts?.get(attempt);
    if (client === undefined) return;
    t.attempts!.delete(attempt);
    if (status > 0) client.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    const error = failure ?? (status >= 500 ? String(status) : null);
    if (error !== null) {
      client.attributes[ATTR_ERROR_TYPE] = error;
      client.fail();
    }
    this.finish(client);
  };

  private readonly onRetry = (m: unknown): void => {
    const { ctx, target, kind, status } = m as RequestEvent & { target: string; kind: string; status: number };
    const t = this.traces.get(ctx);
    if (t === undefined || t === UNSAMPLED) return;
    t.server.addEvent('retry', {
      'turnpike.target': target,
      [ATTR_ERROR_TYPE]: kind,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: status,
    });
  };

  /** A hook or terminal threw (500 TP_INTERNAL): the exception goes on the server span, as the gateway log has it. */
  private readonly onRequestError = (m: unknown): void => {
    const { ctx, error } = m as { ctx: RequestContext; error: unknown };
    const t = this.traces.get(ctx);
    if (t === undefined || t === UNSAMPLED) return;
    t.server.recordException(error);
  };

  private readonly onRequestEnd = (m: unknown): void => {
    const { ctx } = m as RequestEvent;
    const t = this.traces.get(ctx);
    if (t === undefined) return;
    this.traces.delete(ctx);
    if (t !== UNSAMPLED) {
      const server = t.server;
      const attributes = server.attributes;
      // The route is named here rather than when it matched: one event less on every request's path.
      if (ctx.routeName !== '') {
        server.name = `${server.name} ${ctx.routeName}`;
        attributes['turnpike.route'] = ctx.routeName;
      }
      attributes['turnpike.request_id'] = ctx.requestId;
      if (ctx.upstreamName !== '') attributes['turnpike.upstream'] = ctx.upstreamName;
      if (ctx.status > 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = ctx.status;
      const error = ctx.errorCode !== '' ? ctx.errorCode : ctx.status >= 500 ? String(ctx.status) : null;
      if (error !== null) attributes[ATTR_ERROR_TYPE] = error;
      if (ctx.status >= 500) server.fail();
      // Tries still open (the client left mid-answer): their end comes after the request's.
      if (t.attempts !== null)
        for (const client of t.attempts.values()) {
          client.attributes[ATTR_ERROR_TYPE] = 'client-gone';
          this.finish(client);
        }
      this.finish(server);
    }
    if (--this.open === 0 && this.retiring !== null) this.retiring();
  };

  /** Ends `span` and hands it to the batch (exported off the request path). */
  private finish(span: SpanRecord): void {
    if (span.end()) this.processor.onEnd(span);
  }

  /** A reload replaced this config: no new requests; closes (flushing) once the open ones have ended. */
  retire(): Promise<void> {
    CHANNELS.requestStart.unsubscribe(this.onRequestStart);
    if (this.open === 0) return this.close();
    return new Promise<void>((resolve) => {
      this.retiring = () => {
        this.retiring = null;
        resolve(this.close());
      };
    });
  }

  /** Unsubscribes and shuts the batch processor down, exporting what is queued (bounded by the export timeout). */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.unsubscribe();
    this.retiring = null;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.config.otlp.timeout + 1000);
      timer.unref();
    });
    await Promise.race([this.processor.shutdown().catch(() => undefined), bound]);
    clearTimeout(timer);
  }
}
