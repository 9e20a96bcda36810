// The top-level `tracing:` section: OpenTelemetry spans exported over OTLP/HTTP. Absent: no tracing at all.
import { z } from 'zod';
import { PATTERNS, positiveDuration } from './primitives.ts';
import { secret } from './secret.ts';

export const tracing = z
  .strictObject({
    otlp: z
      .strictObject({
        endpoint: z
          .string()
          .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), {
            message: 'expected an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces',
          })
          .default('http://127.0.0.1:4318/v1/traces')
          .meta({
            description: "the collector's OTLP/HTTP traces URL (JSON encoding), path included",
            examples: ['http://otel-collector:4318/v1/traces'],
            pattern: PATTERNS.httpUrl,
          }),
        headers: z
          .record(z.string(), secret(z.string()))
          .default({})
          .meta({
            description: 'headers sent with every export (a collector API key); redacted in config dumps',
            examples: [{ 'x-api-key': '${OTEL_API_KEY}' }],
          }),
        timeout: positiveDuration
          .prefault('10s')
          .meta({ description: 'how long one export may take, its retries included; then the batch is dropped' }),
      })
      .prefault({})
      .meta({ description: 'where spans go: an OpenTelemetry collector (or any OTLP/HTTP receiver)' }),
    sampleRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .meta({
        description:
          'share of new traces recorded (parent-based: a sampled incoming traceparent is always followed); 0 turns tracing off',
        examples: [0.01],
      }),
    serviceName: z
      .string()
      .min(1)
      .default('turnpike')
      .meta({ description: 'the service.name of every span', examples: ['edge-gateway'] }),
    batchDelay: positiveDuration
      .prefault('5s')
      .meta({ description: 'the longest a finished span waits before its batch is exported' }),
  })
  .optional()
  .meta({ description: 'OpenTelemetry traces; absent or sampleRatio 0: off' });

export type TracingConfig = z.output<typeof tracing>;
