// The config schema: the single source of truth for types, validation messages and `turnpike schema`.
import { accessLogSchema } from './access-log-schema.ts';
import { grpcTranscode } from './grpc-transcode-schema.ts';
import { admin } from './admin-schema.ts';
import { bridge } from './bridge-schema.ts';
import { errorPages, fallback, FALLBACK_TERMINALS } from './fallback-schema.ts';
import { consumerHeaders, consumers, stores } from './consumer-schema.ts';
import {
  clientBodyTimeout,
  escapedSlashes,
  h2Limits,
  headerTimeout,
  keepAliveTimeout,
  listener,
  maxHeaderSize,
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
import { aggregate } from './aggregate-schema.ts';
import { split, splitSticky } from './split-schema.ts';
import { routeTimeouts, upstream } from './upstream-schema.ts';
import { tracing } from './tracing-schema.ts';
import { discoverySettings } from './discovery-schema.ts';
import { deprecated, versioning, versionToken } from './versioning-schema.ts';
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
  enabled: z
    .boolean()
    .default(true)
    .meta({ description: 'serve GET /metrics on the admin listener', examples: [false] }),
  buckets: z
    .array(z.number().positive().finite())
    .min(1)
    .refine((b) => b.every((v, i) => i === 0 || v > b[i - 1]!), { message: 'expected increasing bucket bounds' })
    .default(DEFAULT_METRIC_BUCKETS)
    .meta({
      description: 'upper bounds (seconds) of the request and upstream duration histograms',
      examples: [[0.01, 0.05, 0.1, 0.5, 1, 5]],
    }),
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
  .meta({ description: 'auto (one worker per CPU core) or a number; 1 = a single process', examples: ['auto', 4] });

const maxBodySize = size.meta({
  description: 'bytes of a request body; more is answered 413 (streamed bodies are cut when they pass it)',
  examples: ['50mb'],
});
const requestTimeout = duration.meta({
  description:
    "time from a request's start to the upstream's response head; then 504 (not an upgraded WebSocket or a streaming response)",
  examples: ['30s'],
});

const limits = z.strictObject({
  maxHeaderSize: maxHeaderSize.prefault('16kb'),
  maxBodySize: maxBodySize.prefault('10mb'),
  headerTimeout: headerTimeout.prefault('10s'),
  requestTimeout: requestTimeout.prefault('60s'),
  keepAliveTimeout: keepAliveTimeout.prefault('75s'),
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
  .transform((h) => h.toLowerCase())
  .meta({ examples: ['X-HTTP-Method-Override'] });

const pathMatch = z
  .union(
    [
      routePath,
      z.strictObject({
        exact: routePath.meta({ description: 'this path only', examples: ['/healthz'] }),
      }),
      z.strictObject({
        prefix: routePath.meta({
          description: 'this path and everything under it (segment boundary)',
          examples: ['/api'],
        }),
      }),
      z.strictObject({
        regex: regexSource.meta({
          description: 'a regular expression on the raw path; named groups become parameters',
          examples: ['^/v[0-9]+/'],
        }),
      }),
    ],
    {
      error:
        'expected a path: /users (that path and everything under it), { exact: /healthz }, { prefix: /api } or { regex: "^/v[0-9]+/" }',
    },
  )
  .meta({
    description:
      'the path: /users (a prefix on a segment boundary, may hold :param segments), { exact }, { prefix } or { regex }',
    examples: ['/users/:id'],
  });

const hostPattern = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?(:\d+)?$/, {
    message: 'expected a host name such as api.example.com or *.example.com',
  })
  .transform((h) => h.toLowerCase());

const match = z
  .strictObject({
    host: z
      .union([hostPattern, z.array(hostPattern).min(1)], {
        error: 'expected a host name such as api.example.com, or a list of them',
      })
      .optional()
      .meta({
        description: 'the Host: a name, *.example.com (any subdomain, not the apex), or a list; absent: any host',
        examples: ['api.example.com', ['example.com', '*.example.com']],
      }),
    path: pathMatch.optional(),
    methods: z
      .array(httpMethod)
      .min(1)
      .optional()
      .meta({
        description: 'the methods this route takes (GET also takes HEAD); absent: all',
        examples: [['GET', 'POST']],
      }),
    headers: z
      .record(headerName, stringMatcher)
      .optional()
      .meta({
        description: 'request headers that must match: an exact value or { regex }',
        examples: [{ 'x-api-version': '2' }],
      }),
    query: z
      .record(z.string(), stringMatcher)
      .optional()
      .meta({
        description: 'query parameters (decoded, first occurrence) that must match: an exact value or { regex }',
        examples: [{ tenant: { regex: '^a' } }],
      }),
    version: versionToken.optional().meta({
      description: 'only requests of this API version (see versioning:); absent: any version',
      examples: ['2'],
    }),
  })
  .meta({
    description: 'which requests this route takes: host, path, methods, headers and query (all that are given)',
    examples: [{ host: 'api.example.com', path: '/users' }],
  });

const respond = z
  .strictObject({
    status: z
      .number()
      .int()
      .min(100)
      .max(599)
      .default(200)
      .meta({ description: 'the status', examples: [503] }),
    body: z
      .string()
      .default('')
      .meta({ description: 'the body, as written', examples: ['ok'] }),
    contentType: z
      .string()
      .default('text/plain; charset=utf-8')
      .meta({ description: 'the Content-Type of the body', examples: ['application/json'] }),
    headers: z
      .record(headerName, z.string())
      .default({})
      .meta({ description: 'more response headers', examples: [{ 'cache-control': 'no-store' }] }),
  })
  .meta({
    description: 'answer here, without an upstream',
    examples: [{ status: 200, body: 'ok' }],
  });

const redirect = z
  .strictObject({
    to: z
      .string()
      .min(1)
      .meta({ description: 'the Location: a URL or a path', examples: ['https://docs.example.com'] }),
    status: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
        error: 'expected a redirect status: 301, 302, 303, 307 or 308',
      })
      .default(302)
      .meta({ description: 'the redirect status: 301, 302, 303, 307 or 308', examples: [301] }),
    appendPath: z.boolean().default(false).meta({
      description: "append the rest of the path after the route's prefix, and the query, to `to`",
    }),
  })
  .meta({
    description: 'answer with a redirect',
    examples: [{ to: 'https://docs.example.com', status: 301 }],
  });

/**
 * The config shape of each terminal, by the route key that selects it (src/terminals/ holds one implementation
 * per key; its registry checks both lists agree). A route takes exactly one of these keys.
 */
export const ROUTE_TERMINALS = {
  upstream: z
    .string()
    .min(1)
    .meta({ description: 'forward to this upstream (a name under upstreams)', examples: ['users'] }),
  respond,
  redirect,
  aggregate,
  bridge,
  grpcTranscode,
  split,
};
const TERMINAL_KEYS = Object.keys(ROUTE_TERMINALS) as (keyof typeof ROUTE_TERMINALS)[];
const terminalList = (keys: readonly string[]) =>
  keys.length <= 2 ? keys.join(' or ') : `${keys.slice(0, -1).join(', ')} or ${keys.at(-1)}`;

function optionalShape<T extends Record<string, z.ZodType>>(shape: T): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof T]: z.ZodOptional<T[K]>;
  };
}

/** What `plugins:` says in `turnpike schema` (global and per route). */
const PLUGIN_LIST_DOCS = {
  description: 'plugins, each as `- name: { config }`; they run in fixed phases whatever the list order',
  examples: [[{ 'key-auth': { header: 'x-api-key' } }, { 'rate-limit': { limits: [{ requests: 100, per: '1m' }] } }]],
};

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
  return z
    .array(options.length === 1 ? options[0]! : z.union(options as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]))
    .meta(PLUGIN_LIST_DOCS);
}

export function buildConfigSchema(plugins?: PluginSchemas, forDocs = false) {
  const pluginArray = (forDocs && plugins ? pluginListForDocs(plugins) : pluginList(plugins)) as unknown as z.ZodType<
    PluginEntry[]
  >;
  const route = z
    .strictObject({
      name: z
        .string()
        .min(1)
        .optional()
        .meta({
          description: 'the route name (logs, metrics, the admin API; routes[N] without one); unique among routes',
          examples: ['users'],
        }),
      match: match.prefault({}),
      ...optionalShape(ROUTE_TERMINALS),
      splitSticky: splitSticky.optional(),
      fallback: fallback.optional(),
      deprecated: deprecated.optional(),
      plugins: pluginArray.default([]).meta(PLUGIN_LIST_DOCS),
      limits: z
        .strictObject({
          maxBodySize: maxBodySize.optional(),
          requestTimeout: requestTimeout.optional(),
          bodyTimeout: clientBodyTimeout.optional(),
          sendTimeout: sendTimeout.optional(),
        })
        .optional()
        .meta({
          description: 'the own body size and timeouts of this route, over the top-level limits',
          examples: [{ maxBodySize: '2gb', requestTimeout: '5m' }],
        }),
      timeouts: routeTimeouts.optional(),
      protocol: z
        .enum(['http', 'grpc', 'grpc-web'])
        .default('http')
        .meta({
          description:
            'grpc: errors the gateway itself answers are gRPC statuses (grpc-status trailers), not problem+json; grpc-web: browsers speak gRPC-Web (binary or base64 text, the status in the body) to a gRPC upstream (http2: true)',
          examples: ['grpc', 'grpc-web'],
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
          examples: [['connect-udp']],
        }),
      forwardOverrideHeaders: z
        .array(overrideHeader)
        .default([])
        .meta({
          description:
            "client headers that make a backend read another method, URL or scheme are removed; list those this route's backend should get",
          examples: [['X-HTTP-Method-Override']],
        }),
    })
    .superRefine((r, ctx) => {
      const terminals = TERMINAL_KEYS.filter((t) => r[t] !== undefined);
      if (r.protocol === 'grpc-web' && terminals.length > 0 && !terminals.includes('upstream'))
        ctx.addIssue({
          code: 'custom',
          message: 'protocol grpc-web translates for a gRPC upstream: the route needs upstream',
          path: ['protocol'],
        });
      if (terminals.length === 0) {
        ctx.addIssue({ code: 'custom', message: `a route needs one of ${terminalList(TERMINAL_KEYS)}` });
      } else if (terminals.length > 1) {
        ctx.addIssue({
          code: 'custom',
          message: `a route takes only one of ${terminalList(TERMINAL_KEYS)}, but this one has ${terminals.join(' and ')}`,
          params: { atKey: terminals[1] },
        });
      }
      if (r.splitSticky !== undefined && r.split === undefined)
        ctx.addIssue({
          code: 'custom',
          message: 'splitSticky keeps clients on a split: the route needs split',
          params: { atKey: 'splitSticky' },
        });
      if (r.fallback !== undefined && terminals.length === 1 && !FALLBACK_TERMINALS.some((t) => t === terminals[0]))
        ctx.addIssue({
          code: 'custom',
          message: `fallback stands in for an upstream: it goes beside ${terminalList(FALLBACK_TERMINALS)}, not ${terminals[0]}`,
          params: { atKey: 'fallback' },
        });
      // One says the client speaks JSON, the other that it speaks gRPC.
      if (r.grpcTranscode !== undefined && r.protocol === 'grpc')
        ctx.addIssue({
          code: 'custom',
          message: 'protocol: grpc is for gRPC clients; grpcTranscode serves JSON clients: a route takes one of them',
          params: { atKey: 'protocol' },
        });
    })
    .meta({ examples: [{ name: 'users', match: { path: '/users' }, upstream: 'users' }] });

  return z.strictObject({
    listeners: z
      .array(listener)
      .min(1)
      .meta({ description: 'the addresses the gateway listens on: http, https, tcp or udp; one at least' }),
    limits: limits.prefault({}).meta({
      description: 'limits on clients: head and body sizes, timeouts, connections, HTTP/2 and path rules',
      examples: [{ maxBodySize: '50mb', headerTimeout: '5s' }],
    }),
    upstreams: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, _ . -' }), upstream)
      .default({})
      .meta({
        description: 'the backends by name: targets, balancing, health, retries, breaker, timeouts',
        examples: [{ users: { targets: [{ url: 'http://127.0.0.1:9001' }] } }],
      }),
    routes: z.array(route).default([]).meta({
      description: 'the routes; precedence is by host and path specificity, not list order (see the README)',
    }),
    plugins: pluginArray.default([]).meta({
      ...PLUGIN_LIST_DOCS,
      description: 'global plugins: run on every route before its own, and on requests no route matches',
    }),
    errorPages: errorPages.optional(),
    accessLog: accessLogSchema,
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .meta({ description: 'the least severe level written', examples: ['warn'] }),
      })
      .prefault({})
      .meta({ description: "the gateway's own log (JSON on stderr)" }),
    shutdown: z
      .strictObject({
        drainTimeout: duration.prefault('30s').meta({
          description: 'how long SIGTERM waits for in-flight requests before closing what is left',
          examples: ['10s'],
        }),
        acceptGrace: duration.prefault('0s').meta({
          description:
            'after SIGTERM, /readyz answers 503 at once but the listeners keep serving this long (a balancer takes the instance out meanwhile), then the drain runs',
          examples: ['2s'],
        }),
      })
      .prefault({})
      .meta({ description: 'how the gateway stops' }),
    requestId: z
      .strictObject({
        header: headerName.default('x-request-id').meta({
          description: 'the header that carries the request id upstream (a valid one from the client is kept)',
          examples: ['x-correlation-id'],
        }),
        echo: z.boolean().default(true).meta({ description: 'send the request id back to the client too' }),
      })
      .prefault({})
      .meta({ description: 'the id of each request, in the access log and upstream' }),
    workers: workerCount.default(1),
    metrics: metricsSettings.optional().meta({
      description: 'Prometheus metrics, served as GET /metrics on the admin listener (needs admin:)',
    }),
    consumers,
    stores,
    consumerHeaders,
    tracing,
    admin,
    versioning: versioning.optional(),
    discovery: discoverySettings,
  });
}

type RawConfig = z.output<ReturnType<typeof buildConfigSchema>>;
export type RouteConfig = Omit<RawConfig['routes'][number], 'plugins'> & { plugins: PluginEntry[] };
export type Config = Omit<RawConfig, 'routes' | 'plugins'> & { routes: RouteConfig[]; plugins: PluginEntry[] };
export type ListenerConfig = Config['listeners'][number];
export type UpstreamConfig = Config['upstreams'][string];
export type MatchConfig = RouteConfig['match'];
export type LimitsConfig = Config['limits'];
