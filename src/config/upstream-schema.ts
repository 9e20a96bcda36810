// The `upstreams.NAME` section: targets, balancing, health, retries, breaker and timeouts.
import { z } from 'zod';
import { duration, headerName, PATTERNS, positiveDuration, share, size } from './primitives.ts';
import { secret } from './secret.ts';
import { discover } from './discovery-schema.ts';

export const BALANCE_ALGORITHMS = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'least-request',
  'random',
  'ip-hash',
  'consistent-hash',
  'ewma',
] as const;

const TARGET_FORMS =
  'an origin such as http://127.0.0.1:9001, https://api.internal, tcp://10.0.0.5:5432 or udp://10.0.0.53:53 (no path)';

/** Why a target URL is not usable (said so that the fix is plain), or undefined when it is. Never throws. */
export function targetUrlProblem(url: string): string | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (!scheme) {
    return /^[^/:]+(:\d+)?\/?$/.test(url)
      ? `expected ${TARGET_FORMS}; this one has no scheme: write http://${url.replace(/\/$/, '')}`
      : `expected ${TARGET_FORMS}`;
  }
  if (!/^(https?|tcp|udp)$/.test(scheme[1]!))
    return `expected ${TARGET_FORMS}; "${scheme[1]}://" is not one of http://, https://, tcp://, udp://`;
  const port = /^[^/]*?:(\d+)\/?$/.exec(url.slice(scheme[0].length).replace(/^\[[^\]]*\]/, ''));
  if (port && Number(port[1]) > 65535) return `port ${port[1]} is out of range (1 to 65535)`;
  if (!/^(https?|tcp|udp):\/\/[^/]+\/?$/.test(url)) return `expected ${TARGET_FORMS}`;
  if (!URL.canParse(url)) return `expected ${TARGET_FORMS}; this one does not parse as a URL`;
  if (/^(tcp|udp):/.test(url) && new URL(url).port === '')
    return `a ${scheme[1]}:// target needs a port, such as ${url.replace(/\/$/, '')}:5432`;
  return undefined;
}

const target = z.strictObject({
  url: secret(
    z
      .string()
      .superRefine((u, ctx) => {
        const problem = targetUrlProblem(u);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .meta({
        description: 'the target origin, no path: http://, https://, tcp:// or udp:// (all targets of one kind)',
        examples: ['http://127.0.0.1:9001'],
        pattern: PATTERNS.targetUrl,
      }),
    'url',
  ),
  weight: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(1)
    .meta({ description: "the target's share of the traffic against the other targets' weights", examples: [3] }),
  backup: z.boolean().default(false).meta({ description: 'gets traffic only when no primary target is healthy' }),
});

/** Where the hash of consistent-hash (and ip-hash) comes from. */
export type HashSource =
  { readonly kind: 'header' | 'cookie' | 'query'; readonly name: string } | { readonly kind: 'ip' | 'path' };

const hashOn = z
  .string()
  .transform((v, ctx): HashSource => {
    if (v === 'ip' || v === 'path') return { kind: v };
    const m = /^(header|cookie|query):(.+)$/.exec(v);
    if (m && (m[1] !== 'header' || /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m[2]!))) {
      return { kind: m[1] as 'header' | 'cookie' | 'query', name: m[1] === 'header' ? m[2]!.toLowerCase() : m[2]! };
    }
    ctx.addIssue({
      code: 'custom',
      message: `expected header:NAME, cookie:NAME, query:NAME, ip or path, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  })
  .meta({
    description: 'what consistent-hash hashes: header:NAME | cookie:NAME | query:NAME | ip | path (default ip)',
    examples: ['header:x-user-id'],
  });

/** `200-399`, `200` or 204 → an inclusive range. */
const statusRange = z
  .union([z.number().int(), z.string()], { error: 'expected a status such as 200 or a range such as 200-399' })
  .transform((v, ctx): [number, number] => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(String(v));
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(lo >= 100 && hi <= 599 && lo <= hi)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a status such as 200 or a range such as 200-399, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return [lo, hi];
  })
  .meta({ examples: ['200-399'] });

const activeHealthCheck = z.strictObject({
  type: z
    .enum(['http', 'tcp'])
    .default('http')
    .meta({ description: 'http: a GET on path; tcp: a connect', examples: ['tcp'] }),
  path: z
    .string()
    .startsWith('/', { message: 'a health-check path must start with /' })
    .default('/')
    .meta({ description: 'the path http probes ask for', examples: ['/healthz'] }),
  host: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Host header of http probes (default: the target host)', examples: ['api.internal'] }),
  expectStatus: statusRange
    .prefault('200-399')
    .meta({ description: 'the statuses a passing http probe answers: 200 or a range such as 200-399' }),
  interval: positiveDuration
    .prefault('5s')
    .meta({ description: 'time between two probes of a target', examples: ['10s'] }),
  timeout: positiveDuration
    .prefault('2s')
    .meta({ description: 'a probe not answered within this fails', examples: ['1s'] }),
  healthyThreshold: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .meta({ description: 'passing probes in a row that bring an unhealthy target back', examples: [3] }),
  unhealthyThreshold: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(3)
    .meta({ description: 'failing probes in a row that take a target out', examples: [2] }),
});

const passiveHealthCheck = z.strictObject({
  consecutiveFailures: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(5)
    .meta({
      description: 'connect errors, resets, timeouts or 5xx in a row that eject a target',
      examples: [3],
    }),
  ejectFor: positiveDuration.prefault('30s').meta({
    description: 'how long an ejected target is out, times the number of its ejections (at most 300s)',
    examples: ['10s'],
  }),
  // A share like every fraction; the outlier detector counts in percent.
  maxEjectedPercent: share
    .transform((f) => Math.round(f * 1e6) / 1e4)
    .prefault('50%')
    .meta({
      description: 'at most this share of the targets is ejected at once: 50% or 0.5',
      examples: ['30%'],
    }),
});

export const RETRY_CONDITIONS = ['connect-failure', 'reset', 'timeout', '502', '503', '504'] as const;

const retries = z.strictObject({
  attempts: z
    .number()
    .int()
    .min(0)
    .max(10)
    .default(2)
    .meta({ description: 'retries after the first try', examples: [3] }),
  on: z
    .array(z.union([z.enum(RETRY_CONDITIONS), z.number().int().min(500).max(599).transform(String)]))
    .default(['connect-failure', 'reset', '502', '503', '504'])
    .transform((list) => new Set(list.map(String)))
    .meta({
      description: 'what is retried: connect-failure, reset, timeout, or a 5xx status',
      examples: [['connect-failure', 503]],
    }),
  backoff: duration
    .prefault('25ms')
    .meta({ description: 'base of an exponential backoff with jitter (capped at 10×)', examples: ['50ms'] }),
  budget: share.prefault('20%').meta({
    description: 'retries in flight at most this share of the requests in flight: 20% or 0.2',
    examples: ['10%'],
  }),
  minConcurrent: z
    .number()
    .int()
    .min(0)
    .default(3)
    .meta({ description: 'retries always allowed in flight, whatever the budget', examples: [5] }),
  idempotencyKey: z
    .boolean()
    .default(false)
    .meta({
      description:
        'retry a request carrying an Idempotency-Key header like an idempotent one, whatever its method (the backend deduplicates by the key)',
      examples: [true],
    }),
  bufferBody: size.prefault('64kb').meta({
    description:
      'request bodies up to this size are kept so a retry can resend them; larger ones are streamed and not retried once sent',
    examples: ['1mb'],
  }),
});

const circuitBreaker = z.strictObject({
  failureRatio: share
    .refine((f) => f > 0, { message: 'expected a share above 0, such as 50% or 0.5' })
    .prefault('50%')
    .meta({ description: 'the share of failed requests in the window that opens the breaker', examples: ['25%'] }),
  minimumRequests: z
    .number()
    .int()
    .min(1)
    .default(20)
    .meta({
      description: 'requests in the window before the ratio is judged',
      examples: [50],
    }),
  window: positiveDuration
    .prefault('10s')
    .meta({ description: 'the sliding window failures are counted in', examples: ['30s'] }),
  openFor: duration.prefault('30s').meta({
    description: 'how long an open breaker answers 503 before letting trial requests through',
    examples: ['1m'],
  }),
  halfOpenRequests: z
    .number()
    .int()
    .min(1)
    .default(3)
    .meta({
      description: 'trial requests let through when half open; all must succeed to close it',
      examples: [5],
    }),
});

export const upstreamTimeouts = z.strictObject({
  connect: duration
    .prefault('5s')
    .meta({ description: 'time to open a connection to a target (TCP and TLS)', examples: ['2s'] }),
  response: duration
    .prefault('60s')
    .meta({ description: 'until the response head (first byte); then 504', examples: ['30s'] }),
  idle: duration.prefault('60s').meta({ description: 'between two chunks of the response body', examples: ['30s'] }),
  total: duration.optional().meta({ description: 'the whole exchange, retries included', examples: ['2m'] }),
});

const sticky = z.strictObject({
  cookie: z
    .string()
    .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { message: 'expected a cookie name' })
    .meta({ description: 'the name of the cookie that pins a client to its target', examples: ['tp_orders'] }),
  ttl: duration.optional().meta({ description: 'cookie lifetime (default: a session cookie)', examples: ['1h'] }),
  secret: secret(z.string().min(16, { message: 'a sticky secret needs at least 16 characters' }))
    .optional()
    .meta({
      description: 'HMAC key of the cookie, 16 characters or more (default: one per instance, lost on restart)',
      examples: ['${STICKY_SECRET}'],
    }),
  path: z
    .string()
    .default('/')
    .meta({ description: 'the Path of the cookie', examples: ['/orders'] }),
  secure: z.boolean().default(false).meta({ description: 'mark the cookie Secure (sent over HTTPS only)' }),
  sameSite: z
    .enum(['Lax', 'Strict', 'None'])
    .default('Lax')
    .meta({ description: 'the SameSite attribute of the cookie', examples: ['Strict'] }),
});

/** TLS to https:// targets: the CA that signs them, a client certificate, the name to verify. */
export const upstreamTls = z
  .strictObject({
    ca: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'PEM file of the CA that signs the targets (default: the system CAs)',
        examples: ['certs/internal-ca.pem'],
      }),
    cert: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'PEM file of a client certificate presented to the targets (mTLS); needs key',
        examples: ['certs/gateway.pem'],
      }),
    key: secret(z.string().min(1))
      .optional()
      .meta({ description: 'PEM file of the private key of cert', examples: ['certs/gateway-key.pem'] }),
    serverName: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'SNI and the name to verify (default: the target host)', examples: ['api.internal'] }),
    insecureSkipVerify: z
      .boolean()
      .default(false)
      .meta({ description: 'do not verify the certificates of the targets (logged as a warning at load; tests only)' }),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'a client certificate needs both cert and key',
  })
  .meta({
    description: 'TLS to https:// targets: the CA, a client certificate, the name to verify',
    examples: [{ ca: 'certs/internal-ca.pem' }],
  });

export const upstream = z
  .strictObject({
    // Left out: [] (an upstream with discover:); written: one at least.
    targets: z
      .array(target)
      .min(1)
      .default([])
      .meta({ description: 'the servers of this upstream; one at least, or discover: instead' }),
    discover: discover.optional(),
    balance: z
      .enum(BALANCE_ALGORITHMS)
      .default('round-robin')
      .meta({
        description: 'how a target is picked for each request (or connection, for tcp and udp)',
        examples: ['least-request'],
      }),
    hashOn: hashOn.optional(),
    sticky: sticky.optional().meta({
      description: 'pin each client to a target with a signed cookie',
      examples: [{ cookie: 'tp_orders', ttl: '1h' }],
    }),
    healthCheck: z
      .strictObject({
        active: activeHealthCheck.optional().meta({
          description: 'probes sent to every target, once per instance; a failing target is taken out',
        }),
        passive: passiveHealthCheck.optional().meta({
          description: 'outlier detection on live traffic: a target failing in a row is ejected for a while',
        }),
        slowStart: duration
          .optional()
          .meta({ description: 'ramp a returning target up to its full share over this time', examples: ['30s'] }),
      })
      .prefault({})
      .meta({ description: 'active probes, passive outlier detection and slow start' }),
    retries: retries
      .optional()
      .meta({ description: 'retry a failed try on another target, within a budget (idempotent requests)' }),
    circuitBreaker: circuitBreaker
      .optional()
      .meta({ description: 'answer 503 at once while the upstream fails too often, then try it again' }),
    timeouts: upstreamTimeouts
      .prefault({})
      .meta({ description: 'connect, response head, idle body and total timeouts' }),
    proxyProtocol: z
      .enum(['v1', 'v2'])
      .optional()
      .meta({ description: 'tcp:// targets: send a PROXY header naming the client first', examples: ['v2'] }),
    http2: z
      .boolean()
      .default(false)
      .meta({ description: 'speak HTTP/2 to the targets (gRPC needs it): h2 over TLS, h2c over http://' }),
    tls: upstreamTls.optional(),
    maxResponseHeaderSize: size
      .refine((n) => n >= 1024 && n <= 1024 * 1024, { message: 'expected a size from 1kb to 1mb' })
      .prefault('32kb')
      .meta({
        description:
          "a response head whose header names and values exceed this many bytes is refused with 502 (Envoy's max_response_headers_kb)",
        examples: ['64kb'],
      }),
    maxRequests: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1024)
      .meta({
        description:
          'requests sent to the targets at once, per gateway process (Envoy circuit_breakers max_requests); more wait in the queue',
        examples: [256],
      }),
    queue: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(1024)
      .meta({
        description:
          'requests waiting (FIFO, up to timeouts.connect) for one of maxRequests; past it a fast 503 with Retry-After (Envoy max_pending_requests)',
        examples: [0],
      }),
    preserveHost: z
      .boolean()
      .default(true)
      .meta({ description: "send the client's Host upstream (false: the target's host)" }),
    hideResponseHeaders: z
      .array(headerName)
      .default(['server', 'x-powered-by'])
      .meta({
        description: 'response headers removed before the client sees them ([] shows them all)',
        examples: [['server', 'x-powered-by', 'x-backend']],
      }),
    keepAlive: z
      .strictObject({
        connections: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(128)
          .meta({
            description: 'connections kept open to each target (per process)',
            examples: [64],
          }),
        idleTimeout: duration
          .prefault('60s')
          .meta({ description: 'an idle kept-alive connection is closed after this', examples: ['30s'] }),
      })
      .prefault({})
      .meta({ description: 'the connection pool of each target' }),
  })
  .meta({ examples: [{ targets: [{ url: 'http://127.0.0.1:9001' }] }] })
  .superRefine((u, ctx) => {
    if (u.discover !== undefined && u.targets.length > 0)
      ctx.addIssue({ code: 'custom', message: 'an upstream takes targets or discover, not both', path: ['discover'] });
    // A written `targets: []` has said "one at least" already.
    const targetsRefused = ctx.issues.some((i) => i.path?.[0] === 'targets');
    if (u.discover === undefined && u.targets.length === 0 && !targetsRefused)
      ctx.addIssue({
        code: 'custom',
        message: 'an upstream needs targets (one at least) or discover',
        path: ['targets'],
      });
    if (u.hashOn !== undefined && u.balance !== 'consistent-hash') {
      ctx.addIssue({
        code: 'custom',
        message: `hashOn applies to balance: consistent-hash, not ${u.balance}`,
        path: ['hashOn'],
      });
    }
    const urls = new Set<string>();
    u.targets.forEach((t, i) => {
      // The url's own problem is reported at it; a URL that does not parse must not throw here.
      if (targetUrlProblem(t.url) !== undefined) return;
      const parsed = new URL(t.url);
      const url = `${parsed.protocol}//${parsed.host}`; // URL.origin is "null" for tcp: and udp:
      if (urls.has(url))
        ctx.addIssue({ code: 'custom', message: `target ${url} is listed twice`, path: ['targets', i, 'url'] });
      urls.add(url);
    });
    const kinds = new Set(u.targets.map((t) => kindOf(t.url)));
    if (u.proxyProtocol !== undefined && !kinds.has('tcp')) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxyProtocol'],
        message: 'proxyProtocol is sent to tcp:// targets only',
      });
    }
    if (kinds.size > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: `targets of one upstream must all be http(s), all tcp or all udp, not ${[...kinds].join(' and ')}`,
      });
    }
    if (u.targets.length > 0 && u.targets.every((t) => t.backup)) {
      ctx.addIssue({
        code: 'custom',
        message: 'an upstream needs at least one target that is not a backup',
        path: ['targets'],
      });
    }
  });

/** Per-route overrides of the upstream's timeouts (connect stays per upstream: it belongs to the connection pool). */
export const routeTimeouts = z
  .strictObject({
    response: duration
      .optional()
      .meta({ description: "until the response head, over the upstream's", examples: ['5s'] }),
    idle: duration.optional().meta({ description: "between two body chunks, over the upstream's", examples: ['30s'] }),
    total: duration
      .optional()
      .meta({ description: "the whole exchange, retries included, over the upstream's", examples: ['10s'] }),
  })
  .meta({
    description: "this route's own upstream timeouts (connect stays per upstream)",
    examples: [{ response: '5s' }],
  });

/** What an upstream speaks: http for a discovered one (discover names http or https), else from its targets. */
export function upstreamKind(u: { targets: readonly { url: string }[]; discover?: unknown }): 'http' | 'tcp' | 'udp' {
  return u.discover !== undefined || u.targets.length === 0 ? 'http' : kindOf(u.targets[0]!.url);
}

/** What an upstream speaks, from its targets' scheme: http (http:// and https://), tcp or udp. */
export function kindOf(url: string): 'http' | 'tcp' | 'udp' {
  return url.startsWith('tcp:') ? 'tcp' : url.startsWith('udp:') ? 'udp' : 'http';
}
