// A recorded span as the SDK's span processors and OTLP exporters read it (ReadableSpan), made directly by the
// traces subscriber. The SDK's Tracer and Span objects cost about twice as much per span (a sampler call, a
// context, attribute checks on every setAttribute, a clock read per span); the gateway knows its attributes are
// valid and has the request's start time already, so a recorded request pays for plain objects only. Batching
// and export stay the SDK's (BatchSpanProcessor, OTLPTraceExporter).
import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type HrTime,
  type Link,
  type SpanContext,
  type SpanStatus,
} from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

const NO_LINKS: Link[] = [];
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };
const ERROR: SpanStatus = { code: SpanStatusCode.ERROR };

/** A performance.now() reading as the wall-clock HrTime OTLP carries ([seconds, nanoseconds] since the epoch). */
export function hrTimeOf(now: number): HrTime {
  const ms = performance.timeOrigin + now;
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

/** What every span of one Tracing shares. */
export interface SpanSource {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
}

export class SpanRecord implements ReadableSpan {
  name: string;
  readonly kind: SpanKind;
  private readonly context: SpanContext;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: SpanStatus = UNSET;
  readonly attributes: Attributes;
  readonly links = NO_LINKS;
  events: TimedEvent[] = [];
  ended = false;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  /** performance.now() at the start, for the duration. */
  private readonly startedAt: number;

  constructor(
    source: SpanSource,
    kind: SpanKind,
    name: string,
    traceId: string,
    spanId: string,
    parent: SpanContext | undefined,
    startedAt: number,
    attributes: Attributes,
  ) {
    this.kind = kind;
    this.name = name;
    this.context = { traceId, spanId, traceFlags: TraceFlags.SAMPLED, traceState: parent?.traceState };
    this.parentSpanContext = parent;
    this.startedAt = startedAt;
    this.startTime = hrTimeOf(startedAt);
    this.endTime = this.startTime;
    this.duration = [0, 0];
    this.attributes = attributes;
    this.resource = source.resource;
    this.instrumentationScope = source.scope;
  }

  spanContext(): SpanContext {
    return this.context;
  }

  fail(): void {
    this.status = ERROR;
  }

  addEvent(name: string, attributes: Attributes, now = performance.now()): void {
    this.events.push({ name, attributes, time: hrTimeOf(now), droppedAttributesCount: 0 });
  }

  /** As the SDK's Span.recordException: an `exception` event with the error's type, message and stack. */
  recordException(error: unknown): void {
    const attributes: Attributes = {};
    if (typeof error === 'string') attributes['exception.message'] = error;
    else if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      attributes['exception.type'] = code !== undefined ? String(code) : error.name;
      if (error.message) attributes['exception.message'] = error.message;
      if (error.stack) attributes['exception.stacktrace'] = error.stack;
    } else attributes['exception.message'] = String(error);
    this.addEvent('exception', attributes);
  }

  /** Ends the span now; false when it had ended already. */
  end(now = performance.now()): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.endTime = hrTimeOf(now);
    const ms = Math.max(0, now - this.startedAt);
    const seconds = Math.floor(ms / 1000);
    this.duration = [seconds, Math.round((ms - seconds * 1000) * 1e6)];
    return true;
  }
}
