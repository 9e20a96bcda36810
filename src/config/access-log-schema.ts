// The `accessLog:` section: where lines go, which fields in which order, the line format, what is skipped.
import { z } from 'zod';

/** Every field an HTTP request's JSON line can carry, in the default order. */
export const ACCESS_LOG_FIELDS = [
  'level',
  'time',
  'requestId',
  'traceId',
  'clientIp',
  'protocol',
  'method',
  'host',
  'path',
  'route',
  'version',
  'consumer',
  'upstream',
  'target',
  'attempts',
  'status',
  'bytesIn',
  'bytesOut',
  'durationMs',
  'upstreamConnectMs',
  'upstreamHeadersMs',
  'error',
  'cache',
  'userAgent',
  'referer',
] as const;

export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number];

export const accessLogSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'false: no access log at all' }),
    output: z
      .string()
      .default('stdout')
      .meta({
        description: "stdout, stderr, or a file path (relative paths from the config file's folder)",
        examples: ['/var/log/turnpike/access.log'],
      }),
    format: z.enum(['json', 'combined']).default('json').meta({
      description:
        "json: one JSON object per line with `fields`; combined: NGINX's combined line for tools that parse it",
    }),
    fields: z
      .array(z.enum(ACCESS_LOG_FIELDS))
      .min(1)
      .refine((f) => new Set(f).size === f.length, { message: 'a field is listed twice' })
      .default([...ACCESS_LOG_FIELDS])
      .meta({ description: 'the fields of a JSON request line, in this order (json format only)' }),
    skip: z
      .strictObject({
        routes: z
          .array(z.string())
          .default([])
          .meta({ description: 'route names whose requests are not logged', examples: [['health']] }),
        paths: z
          .array(z.string().startsWith('/', { message: 'a path must start with /' }))
          .default([])
          .meta({
            description: 'request paths not logged: the path itself and everything below it (/healthz, /healthz/live)',
            examples: [['/healthz']],
          }),
      })
      .prefault({})
      .meta({ description: 'requests that write no access-log line' }),
  })
  .prefault({})
  .meta({ description: 'one line per request, TCP/UDP session and refused client' });

export type AccessLogSettings = z.output<typeof accessLogSchema>;
