// OpenTelemetry traces as a subscriber of the event stream: one server span per request (request start to end),
// one client span per upstream try (attempt start to end), exported in batches over OTLP/HTTP (JSON) by the SDK's
// BatchSpanProcessor, never on the request path. The client's W3C trace context is continued; each try carries
// the traceparent of its client span upstream (through AttemptStartEvent.headers), or the server span's when the
// trace is not recorded, so a backend's trace id matches the access log's. One Tracing per runtime and config;
// sampleRatio 0 makes none, so that costs nothing but the channels' empty subscriber checks.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
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
import { PooledIdGenerator } from './trace-ids.ts';
import { ReportingExporter, type WarnFn } from './tracing-export.ts';

/** What the trace of one request holds between its events. */
interface RequestTrace {
  readonly server: Span;
  /** The incoming context (or the root); the server span's own is made when a try needs it. */
  readonly parent: Context;
  /** The server span as parent (of client spans) and as the context a not-recorded try propagates. */
  context: Context | null;
  readonly recording: boolean;
  /** Client spans of tries not yet ended, by try number (a retry may start before the try it replaces ends). */
  attempts: Map<number, Span> | null;
}

const propagator = new W3CTraceContextPropagator();
/**
 * A new trace that sampleRatio leaves out (most of them, at the default 0.1) makes no span, context or record:
 * this mark in `traces` and the trace id on the request, whose traceparent each try carries with a fresh span id
 * and the not-sampled flag. An SDK span costs several times as much on the path every such request takes.
 */
const UNSAMPLED = Symbol('unsampled');

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  get: (headers, key) => headers[key],
  keys: (headers) => Object.keys(headers),
};

/** Into a flat [name, value, ...] list (AttemptStartEvent.headers). */
const listSetter: TextMapSetter<string[]> = {
  set: (list, key, value) => void list.push(key, value),
};

// Constant options: startSpan only reads them, and the request path should allocate as little as it can.
const SERVER: SpanOptions = { kind: SpanKind.SERVER };
const CLIENT: SpanOptions = { kind: SpanKind.CLIENT };

/** The server span's context, made once per request, when its first try needs it. */
function contextOf(t: RequestTrace): Context {
  return (t.context ??= trace.setSpan(t.parent, t.server));
}

export class Tracing {
  readonly config: NonNullable<TracingConfig>;
  private readonly gateway: Gateway;
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
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
    this.provider = new TracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName })),
      idGenerator: this.ids,
      // An incoming traceparent's sampled flag is followed; a new trace reaches the SDK only once sampled.
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [
        new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.batchDelay, exportTimeoutMillis: timeout }),
      ],
    });
    this.tracer = this.provider.getTracer('turnpike');
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
    const headers = ctx.req.headers;
    const parent =
      headers.traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, headers, headerGetter);
    // A tracestate belongs to its traceparent: without a valid one it is dropped (W3C), not sent beside ours.
    if (headers.tracestate !== undefined && parent === ROOT_CONTEXT) ctx.removeRequestHeader('tracestate');
    this.open++;
    if (parent === ROOT_CONTEXT) {
      const traceId = this.ids.generateTraceId();
      if (this.ids.lastTraceWord >= this.sampleBelow) {
        ctx.traceId = traceId;
        this.traces.set(ctx, UNSAMPLED);
        return;
      }
      this.ids.nextTraceId = traceId;
    }
    const method = ctx.req.method ?? 'GET';
    const server = this.tracer.startSpan(method, SERVER, parent);
    const recording = server.isRecording();
    if (recording) {
      server.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
      server.setAttribute(ATTR_URL_PATH, ctx.path);
      server.setAttribute(ATTR_URL_SCHEME, ctx.scheme);
      server.setAttribute(ATTR_SERVER_ADDRESS, ctx.host);
      server.setAttribute(ATTR_CLIENT_ADDRESS, ctx.clientIp);
    }
    ctx.traceId = server.spanContext().traceId;
    this.traces.set(ctx, { server, parent, context: null, recording, attempts: null });
  };

  private readonly onAttemptStart = (m: unknown): void => {
    const event = m as AttemptStartEvent;
    const t = this.traces.get(event.ctx);
    if (t === undefined) return;
    if (t === UNSAMPLED) {
      event.headers.push('traceparent', `00-${event.ctx.traceId}-${this.ids.generateSpanId()}-00`);
      return;
    }
    if (!t.recording) {
      // Not recorded: the server span's context goes on (its flags say so), so the trace id still correlates.
      propagator.inject(contextOf(t), event.headers, listSetter);
      return;
    }
    const ctx = event.ctx;
    const method = ctx.req.method ?? 'GET';
    const parent = contextOf(t);
    const client = this.tracer.startSpan(method, CLIENT, parent);
    client.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
    client.setAttribute(ATTR_URL_FULL, event.target + ctx.path); // no query: it may carry a credential
    client.setAttribute('turnpike.target', event.target);
    client.setAttribute('turnpike.attempt', event.attempt);
    if (event.attempt > 1) client.setAttribute(ATTR_HTTP_REQUEST_RESEND_COUNT, event.attempt - 1);
    (t.attempts ??= new Map()).set(event.attempt, client);
    propagator.inject(trace.setSpan(parent, client), event.headers, listSetter);
  };

  private readonly onAttemptEnd = (m: unknown): void => {
    const { ctx, attempt, status, failure } = m as RequestEvent & {
      attempt: number;
      status: number;
      failure: string | null;
    };
    const t = this.traces.get(ctx);
    if (t === undefined || t === UNSAMPLED) return;
    const attempts = t.attempts;
    const client = attempts?.get(attempt);
    if (client === undefined) return;
    attempts!.delete(attempt);
    if (status > 0) client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    const error = failure ?? (status >= 500 ? String(status) : null);
    if (error !== null) {
      client.setAttribute(ATTR_ERROR_TYPE, error);
      client.setStatus({ code: SpanStatusCode.ERROR });
    }
    client.end();
  };

  private readonly onRetry = (m: unknown): void => {
    const { ctx, target, kind, status } = m as RequestEvent & { target: string; kind: string; status: number };
    const t = this.traces.get(ctx);
    if (t === undefined || t === UNSAMPLED || !t.recording) return;
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
    if (t === undefined || t === UNSAMPLED || !t.recording) return;
    t.server.recordException(error instanceof Error ? error : String(error));
  };

  private readonly onRequestEnd = (m: unknown): void => {
    const { ctx } = m as RequestEvent;
    const t = this.traces.get(ctx);
    if (t === undefined) return;
    this.traces.delete(ctx);
    if (t !== UNSAMPLED && t.recording) {
      const server = t.server;
      // The route is named here rather than when it matched: one event less on every request's path.
      if (ctx.routeName !== '') {
        server.updateName(`${ctx.req.method ?? 'GET'} ${ctx.routeName}`);
        server.setAttribute('turnpike.route', ctx.routeName);
      }
      server.setAttribute('turnpike.request_id', ctx.requestId);
      if (ctx.upstreamName !== '') server.setAttribute('turnpike.upstream', ctx.upstreamName);
      if (ctx.status > 0) server.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, ctx.status);
      const error = ctx.errorCode !== '' ? ctx.errorCode : ctx.status >= 500 ? String(ctx.status) : null;
      if (error !== null) server.setAttribute(ATTR_ERROR_TYPE, error);
      if (ctx.status >= 500) server.setStatus({ code: SpanStatusCode.ERROR });
      // Tries still open (the client left mid-answer): their end comes after the request's.
      if (t.attempts !== null)
        for (const client of t.attempts.values()) {
          client.setAttribute(ATTR_ERROR_TYPE, 'client-gone');
          client.end();
        }
      server.end();
    }
    if (--this.open === 0 && this.retiring !== null) this.retiring();
  };

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

  /** Unsubscribes and shuts the provider down, exporting what is queued (bounded by the export timeout). */
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
    await Promise.race([this.provider.shutdown().catch(() => undefined), bound]);
    clearTimeout(timer);
  }
}
