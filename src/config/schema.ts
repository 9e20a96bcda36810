// The config schema: the single source of truth for types, validation messages and `turnpike schema`.
import { accessLogSchema } from './access-log-schema.ts';
import { admin } from './admin-schema.ts';
import { consumerHeaders, consumers, stores } from './consumer-schema.ts';
import {
  clientBodyTimeout,
  escapedSlashes,
  h2Limits,
  listener,
  maxConnections,
  maxConnectionsPerClient,
  maxHeaderCount,
  maxRequestsPerConnection,
  maxUriLength,
  mergeSlashes,
  pathParameters,
  sendTimeout,
  underscoreHeaders,
} from './listener-schema.ts';
import { routeTimeouts, upstream } from './upstream-schema.ts';
import { tracing } from './tracing-schema.ts';
import { z } from 'zod';
import { routePath, cidr, duration, headerName, httpMethod, regexSource, size, stringMatcher } from './primitives.ts';
import { closest } from './problems.ts';

/** Client headers that make a backend read another method, URL or scheme: removed unless a route forwards them. */
export const OVERRIDE_HEADER_NAMES = [
  'X-HTTP-Method-Override',
  'X-Original-URL',
  'X-Rewrite-URL',
  'X-Forwarded-Scheme',
] as const;
const OVERRIDE_HEADERS: readonly string[] = OVERRIDE_HEADER_NAMES.map((h) => h.toLowerCase());

const DEFAULT_METRIC_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const metricsSettings = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'serve GET /metrics on the admin listener' }),
  buckets: z
    .array(z.number().positive().finite())
    .min(1)
    .refine((b) => b.every((v, i) => i === 0 || v > b[i - 1]!), { message: 'expected increasing bucket bounds' })
    .default(DEFAULT_METRIC_BUCKETS)
    .meta({ description: 'upper bounds (seconds) of the request and upstream duration histograms' }),
});

/** Plugin schemas come from the plugin registry; config does not import plugins (imports go downward). */
export type PluginSchemas = ReadonlyMap<string, z.ZodType>;

export interface PluginEntry {
  readonly name: string;
  readonly config: unknown;
}

/** `auto` (one per CPU core) or a number of worker processes; 1 runs the gateway in a single process. */
export const workerCount = z
  .union([z.literal('auto'), z.number().int().min(1).max(256)], {
    error: 'expected auto or a number of workers from 1 to 256',
  })
  .meta({ description: 'auto (one worker per CPU core) or a number; 1 = a single process' });

const limits = z.strictObject({
  maxHeaderSize: size.prefault('16kb'),
  maxBodySize: size.prefault('10mb'),
  headerTimeout: duration.prefault('10s'),
  requestTimeout: duration.prefault('60s'),
  keepAliveTimeout: duration.prefault('75s'),
  headersWithUnderscores: underscoreHeaders.default('drop'),
  h2MaxConcurrentStreams: h2Limits.h2MaxConcurrentStreams.default(128),
  h2MaxResetsPerSecond: h2Limits.h2MaxResetsPerSecond.default(200),
  h2MaxControlFramesPerSecond: h2Limits.h2MaxControlFramesPerSecond.default(1000),
  h2StreamIdleTimeout: h2Limits.h2StreamIdleTimeout.prefault('60s'),
  maxHeaderCount: maxHeaderCount.default(100),
  maxUriLength: maxUriLength.prefault('8kb'),
  bodyTimeout: clientBodyTimeout.prefault('60s'),
  sendTimeout: sendTimeout.prefault('60s'),
  maxConnections: maxConnections.default(10_000),
  maxConnectionsPerClient: maxConnectionsPerClient.default(0),
  maxRequestsPerConnection: maxRequestsPerConnection.default(1000),
  mergeSlashes: mergeSlashes.default(true),
  escapedSlashes: escapedSlashes.default('reject'),
  pathParameters: pathParameters.default('reject'),
  caseSensitivePaths: z.boolean().default(true).meta({
    description:
      'false: route paths match whatever their letter case (Envoy case_sensitive: false), for backends that read `/ADMIN` as `/admin` (IIS, case-insensitive file systems); parameters and the forwarded path keep the case sent. One setting for all routes',
  }),
});

const overrideHeader = z
  .string()
  .refine((h) => OVERRIDE_HEADERS.includes(h.toLowerCase()), {
    message: `expected one of ${OVERRIDE_HEADER_NAMES.join(', ')}`,
  })
  .transform((h) => h.toLowerCase());

const pathMatch = z.union(
  [
    routePath,
    z.strictObject({ exact: routePath }),
    z.strictObject({ prefix: routePath }),
    z.strictObject({ regex: regexSource }),
  ],
  {
    error:
      'expected a path: /users (that path and everything under it), { exact: /healthz }, { prefix: /api } or { regex: "^/v[0-9]+/" }',
  },
);

const hostPattern = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?(:\d+)?$/, {
    message: 'expected a host name such as api.example.com or *.example.com',
  })
  .transform((h) => h.toLowerCase());

const match = z.strictObject({
  host: z
    .union([hostPattern, z.array(hostPattern).min(1)], {
      error: 'expected a host name such as api.example.com, or a list of them',
    })
    .optional(),
  path: pathMatch.optional(),
  methods: z.array(httpMethod).min(1).optional(),
  headers: z.record(headerName, stringMatcher).optional(),
  query: z.record(z.string(), stringMatcher).optional(),
});

const respond = z.strictObject({
  status: z.number().int().min(100).max(599).default(200),
  body: z.string().default(''),
  contentType: z.string().default('text/plain; charset=utf-8'),
  headers: z.record(headerName, z.string()).default({}),
});

const redirect = z.strictObject({
  to: z.string().min(1),
  status: z
    .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
      error: 'expected a redirect status: 301, 302, 303, 307 or 308',
    })
    .default(302),
  appendPath: z.boolean().default(false),
});

/**
 * The config shape of each terminal, by the route key that selects it (src/terminals/ holds one implementation
 * per key; its registry checks both lists agree). A route takes exactly one of these keys.
 */
export const ROUTE_TERMINALS = {
  upstream: z.string().min(1),
  respond,
  redirect,
};
const TERMINAL_KEYS = Object.keys(ROUTE_TERMINALS) as (keyof typeof ROUTE_TERMINALS)[];
const terminalList = (keys: readonly string[]) =>
  keys.length <= 2 ? keys.join(' or ') : `${keys.slice(0, -1).join(', ')} or ${keys.at(-1)}`;

function optionalShape<T extends Record<string, z.ZodType>>(shape: T): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof T]: z.ZodOptional<T[K]>;
  };
}

function pluginList(plugins: PluginSchemas | undefined) {
  if (!plugins) {
    // Used only to describe the shape (JSON Schema without plugin details).
    return z.array(z.record(z.string(), z.unknown()));
  }
  const names = [...plugins.keys()].sort();
  const entry = z.unknown().transform((value, ctx): PluginEntry => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a map with one plugin name as its key, one of: ${names.join(', ')}`,
      });
      return z.NEVER;
    }
    const [name, config] = Object.entries(value)[0]!;
    const schema = plugins.get(name);
    if (!schema) {
      const guess = closest(name, names);
      ctx.addIssue({
        code: 'custom',
        message: `unknown plugin "${name}"${guess ? `; did you mean "${guess}"?` : ''} (known plugins: ${names.join(', ')})`,
        params: { turnpikeCode: 'TP_CONFIG_UNKNOWN_PLUGIN', atKey: name },
      });
      return z.NEVER;
    }
    const parsed = schema.safeParse(config ?? {});
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [name, ...issue.path] } as never);
      return z.NEVER;
    }
    return { name, config: parsed.data };
  });
  return z.array(entry);
}

function pluginListForDocs(plugins: PluginSchemas) {
  const options = [...plugins.entries()].map(([name, schema]) => z.strictObject({ [name]: schema }));
  return z.array(
    options.length === 1 ? options[0]! : z.union(options as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]),
  );
}

export function buildConfigSchema(plugins?: PluginSchemas, forDocs = false) {
  const pluginArray = (forDocs && plugins ? pluginListForDocs(plugins) : pluginList(plugins)) as unknown as z.ZodType<
    PluginEntry[]
  >;
  const route = z
    .strictObject({
      name: z.string().min(1).optional(),
      match: match.prefault({}),
      ...optionalShape(ROUTE_TERMINALS),
      plugins: pluginArray.default([]),
      limits: z
        .strictObject({
          maxBodySize: size.optional(),
          requestTimeout: duration.optional(),
          bodyTimeout: clientBodyTimeout.optional(),
          sendTimeout: sendTimeout.optional(),
        })
        .optional(),
      timeouts: routeTimeouts.optional(),
      protocol: z.enum(['http', 'grpc']).default('http').meta({
        description:
          'grpc: errors the gateway itself answers are gRPC statuses (grpc-status trailers), not problem+json',
      }),
      requireClientCert: z
        .boolean()
        .default(false)
        .meta({ description: 'only clients that presented a verified certificate (mTLS); others get 403' }),
      upgrades: z
        .array(
          z
            .string()
            .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/, {
              message: 'expected a protocol token such as "connect-udp" or "h2c"',
            })
            .transform((p) => p.toLowerCase()),
        )
        .default([])
        .meta({
          description:
            'Upgrade protocols tunnelled on this route besides WebSocket (always tunnelled); any other Upgrade is served as a plain request without it',
        }),
      forwardOverrideHeaders: z.array(overrideHeader).default([]).meta({
        description:
          "client headers that make a backend read another method, URL or scheme are removed; list those this route's backend should get",
      }),
    })
    .superRefine((r, ctx) => {
      const terminals = TERMINAL_KEYS.filter((t) => r[t] !== undefined);
      if (terminals.length === 0) {
        ctx.addIssue({ code: 'custom', message: `a route needs one of ${terminalList(TERMINAL_KEYS)}` });
      } else if (terminals.length > 1) {
        ctx.addIssue({
          code: 'custom',
          message: `a route takes only one of ${terminalList(TERMINAL_KEYS)}, but this one has ${terminals.join(' and ')}`,
          params: { atKey: terminals[1] },
        });
      }
    });

  return z.strictObject({
    listeners: z.array(listener).min(1),
    limits: limits.prefault({}),
    upstreams: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, _ . -' }), upstream)
      .default({}),
    routes: z.array(route).default([]),
    plugins: pluginArray.default([]),
    accessLog: accessLogSchema,
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .prefault({}),
    shutdown: z.strictObject({ drainTimeout: duration.prefault('30s') }).prefault({}),
    requestId: z
      .strictObject({ header: headerName.default('x-request-id'), echo: z.boolean().default(true) })
      .prefault({}),
    workers: workerCount.default(1),
    metrics: metricsSettings.optional().meta({
      description: 'Prometheus metrics, served as GET /metrics on the admin listener (needs admin:)',
    }),
    consumers,
    stores,
    consumerHeaders,
    tracing,
    admin,
  });
}

type RawConfig = z.output<ReturnType<typeof buildConfigSchema>>;
export type RouteConfig = Omit<RawConfig['routes'][number], 'plugins'> & { plugins: PluginEntry[] };
export type Config = Omit<RawConfig, 'routes' | 'plugins'> & { routes: RouteConfig[]; plugins: PluginEntry[] };
export type ListenerConfig = Config['listeners'][number];
export type UpstreamConfig = Config['upstreams'][string];
export type MatchConfig = RouteConfig['match'];
export type LimitsConfig = Config['limits'];
