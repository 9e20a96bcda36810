// The `listeners:` section: one entry per bound address, by protocol. HTTP and HTTPS listeners route requests;
// TCP and UDP listeners forward bytes or datagrams to an upstream (or, for TCP, by the TLS server name).
import { z } from 'zod';
import { acmeSettings } from './acme-schema.ts';
import { cidr, duration, headerName, size } from './primitives.ts';
import { secret } from './secret.ts';

// A quoted `"${PORT}"` (needed inside a flow map, where `{` is YAML syntax) arrives as a string of digits.
const port = z
  .preprocess((v) => (typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v), z.number().int().min(0).max(65535))
  .meta({ description: 'the port to listen on (0: any free port, for tests)', examples: [8080] });

const common = {
  name: z
    .string()
    .min(1)
    .meta({
      description: 'the listener name (in logs, metrics and the admin API); unique among listeners',
      examples: ['web'],
    }),
  address: z
    .string()
    .default('0.0.0.0')
    .meta({
      description: 'the address to bind: an IP (0.0.0.0 or :: for all) or a host name',
      examples: ['127.0.0.1'],
    }),
  port,
  trustedProxies: z
    .array(cidr)
    .default([])
    .meta({
      description:
        'addresses and CIDRs of proxies in front of the gateway: only their X-Forwarded-For (and PROXY header) name the client',
      examples: [['10.0.0.0/8', '192.168.0.10']],
    }),
  proxyProtocol: z
    .boolean()
    .default(false)
    .meta({
      description:
        'peers in trustedProxies must send a PROXY v1/v2 header first; the client it names stands for the peer',
      examples: [true],
    }),
  acceptSockets: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(16)
    .meta({
      description:
        'listening sockets opened on the port with SO_REUSEPORT (Linux, FreeBSD); each event-loop turn accepts one connection per socket, so a burst of new connections is not queued behind the load (1 = one socket)',
      examples: [4],
    }),
};

export const mergeSlashes = z.boolean().meta({
  description:
    'read `//` in a path as `/` before routing and forward it merged (NGINX merge_slashes, on by default; Envoy merge_slashes), so `//admin` meets the ACLs of `/admin`',
  examples: [false],
});

export const escapedSlashes = z.enum(['reject', 'keep', 'unescape']).meta({
  description:
    '%2F and %5C in a path: reject the request with 400 (default), keep them escaped (routed and forwarded escaped), or unescape them to `/` before routing and forward that (Envoy path_with_escaped_slashes_action)',
  examples: ['keep'],
});

export const pathParameters = z.enum(['reject', 'allow']).meta({
  description:
    '";" in a path (Tomcat and Spring strip `;jsessionid=x` before matching, so `/admin;x` is `/admin` to them): reject with 400 (default) or allow',
  examples: ['allow'],
});

export const underscoreHeaders = z.enum(['reject', 'drop', 'allow']).meta({
  description:
    'header names with "_" (CGI backends read X_Auth_User as X-Auth-User): drop them (default), reject the request with 400, or allow them',
  examples: ['reject'],
});

/** HTTP/2 bounds (global under `limits`, or per listener); the defaults are in schema.ts. */
export const h2Limits = {
  h2MaxConcurrentStreams: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .meta({
      description: 'HTTP/2 streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)',
      examples: [256],
    }),
  h2MaxResetsPerSecond: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .meta({
      description: 'RST_STREAM frames a client may send per second before its connection gets GOAWAY (rapid reset)',
      examples: [100],
    }),
  h2MaxControlFramesPerSecond: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .meta({
      description:
        'PING, SETTINGS, PRIORITY, empty DATA/HEADERS/CONTINUATION frames a client may send per second before GOAWAY',
      examples: [500],
    }),
  h2StreamIdleTimeout: duration.meta({
    description: 'an HTTP/2 stream with no frame sent or received for this long is reset (a zero window included)',
    examples: ['30s'],
  }),
};
export const maxHeaderCount = z
  .number()
  .int()
  .min(1)
  .max(10_000)
  .meta({
    description: 'header fields a request may carry (HTTP/1.1); one more is answered 431 (Envoy and HAProxy: 100)',
    examples: [200],
  });

export const maxUriLength = size
  .refine((n) => n >= 16, { message: 'expected at least 16b' })
  .meta({
    description: 'bytes of the request target (path and query); longer is answered 414 (NGINX: 8k, its header buffer)',
    examples: ['16kb'],
  });

// Slow clients and connection counts (NGINX client_body_timeout, send_timeout, limit_conn, keepalive_requests).
export const clientBodyTimeout = duration.meta({
  description:
    'a request body that sends nothing for this long (while the gateway waits to read it) is refused with 408 and its upstream request aborted; 0 = off',
  examples: ['30s'],
});
export const sendTimeout = duration.meta({
  description:
    'a response the client does not read for this long (the gateway waiting to write, upstream reading paused) is aborted; 0 = off',
  examples: ['30s'],
});
export const maxConnections = z
  .number()
  .int()
  .min(1)
  .meta({
    description: 'open client connections per listener and process; more are closed as soon as accepted',
    examples: [20000],
  });
export const maxConnectionsPerClient = z
  .number()
  .int()
  .min(0)
  .meta({
    description:
      'open connections per client address on a listener (the PROXY protocol client when used); more are closed as soon as accepted; 0 = no limit',
    examples: [100],
  });
export const maxRequestsPerConnection = z
  .number()
  .int()
  .min(0)
  .meta({
    description:
      'requests one connection may carry: the last response says Connection: close (HTTP/2: GOAWAY after that many streams); 0 = no limit',
    examples: [10000],
  });

/** Client limits that are also set per listener (`limits:` at the top and on a listener). */
export const maxHeaderSize = size.meta({
  description: 'bytes of a request head (request line and headers); more is answered 431',
  examples: ['32kb'],
});
export const headerTimeout = duration.meta({
  description: 'time to receive a whole request head; a client slower than this gets 408 (slowloris)',
  examples: ['5s'],
});
export const keepAliveTimeout = duration.meta({
  description: 'how long an idle client keep-alive connection is kept open between requests',
  examples: ['30s'],
});

const httpLimits = z
  .strictObject({
    maxHeaderSize: maxHeaderSize.optional(),
    headerTimeout: headerTimeout.optional(),
    keepAliveTimeout: keepAliveTimeout.optional(),
    headersWithUnderscores: underscoreHeaders.optional(),
    h2MaxConcurrentStreams: h2Limits.h2MaxConcurrentStreams.optional(),
    h2MaxResetsPerSecond: h2Limits.h2MaxResetsPerSecond.optional(),
    h2MaxControlFramesPerSecond: h2Limits.h2MaxControlFramesPerSecond.optional(),
    h2StreamIdleTimeout: h2Limits.h2StreamIdleTimeout.optional(),
    maxHeaderCount: maxHeaderCount.optional(),
    maxUriLength: maxUriLength.optional(),
    maxConnections: maxConnections.optional(),
    maxConnectionsPerClient: maxConnectionsPerClient.optional(),
    maxRequestsPerConnection: maxRequestsPerConnection.optional(),
    mergeSlashes: mergeSlashes.optional(),
    escapedSlashes: escapedSlashes.optional(),
    pathParameters: pathParameters.optional(),
  })
  .optional()
  .meta({
    description: 'limits for this listener only, over the top-level limits (those that apply per connection)',
    examples: [{ maxHeaderSize: '32kb', headerTimeout: '5s' }],
  });

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']).meta({ examples: ['TLSv1.3'] });

/**
 * Mozilla's "intermediate" server profile (without DHE): the TLS 1.3 suites, and for TLS 1.2 only ECDHE key
 * exchange with AES-GCM or ChaCha20-Poly1305. Node's own default would also offer CBC-SHA1 suites and, with RSA
 * certificates, RSA key exchange without forward secrecy.
 */
export const MODERN_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const tlsSettings = z.strictObject({
  certificates: z
    .array(
      z.strictObject({
        cert: z
          .string()
          .min(1)
          .meta({
            description: "PEM file of the certificate chain, leaf first (relative to the config file's folder)",
            examples: ['certs/api.example.com.pem'],
          }),
        key: secret(z.string().min(1)).meta({
          description: 'PEM file of the private key of that certificate',
          examples: ['certs/api.example.com-key.pem'],
        }),
      }),
    )
    .min(1)
    .meta({
      description:
        "certificates chosen by SNI from each one's names (SAN); the first is the default; files are watched",
      examples: [[{ cert: 'certs/a.pem', key: 'certs/a-key.pem' }]],
    }),
  minVersion: tlsVersion
    .default('TLSv1.2')
    .meta({ description: 'the oldest TLS version accepted (older than 1.2 is refused at load)' }),
  maxVersion: tlsVersion.optional().meta({ description: 'the newest TLS version offered (default: TLSv1.3)' }),
  ciphers: z
    .string()
    .min(1)
    .default(MODERN_CIPHERS)
    .meta({
      description:
        "OpenSSL cipher list; the default is Mozilla's intermediate profile: forward-secret AEAD suites only",
      examples: ['ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'],
    }),
  clientAuth: z
    .strictObject({
      mode: z
        .enum(['off', 'optional', 'require'])
        .default('off')
        .meta({
          description: 'client certificates (mTLS): off, optional (asked for, verified when sent) or require',
          examples: ['require'],
        }),
      ca: z
        .string()
        .min(1)
        .optional()
        .meta({
          description: 'PEM file of the CA (or CAs) that sign client certificates; needed unless mode is off',
          examples: ['certs/clients-ca.pem'],
        }),
      forwardHeader: headerName.optional().meta({
        description: 'sends the verified client certificate subject and fingerprint upstream',
        examples: ['x-client-cert'],
      }),
    })
    .refine((c) => c.mode === 'off' || c.ca !== undefined, {
      message: 'clientAuth needs a ca (the CA that signs client certificates) unless mode is off',
      path: ['ca'],
    })
    .optional()
    .meta({
      description: 'mutual TLS: ask clients for a certificate signed by ca',
      examples: [{ mode: 'require', ca: 'certs/clients-ca.pem' }],
    }),
});

const hsts = z.strictObject({
  maxAge: duration.prefault('1y').meta({
    description: 'Strict-Transport-Security max-age: a duration such as 180d or 1y (sent in whole seconds)',
    examples: ['180d'],
  }),
  includeSubDomains: z
    .boolean()
    .default(false)
    .meta({ description: 'add includeSubDomains: every subdomain is HTTPS-only too' }),
  preload: z.boolean().default(false).meta({ description: 'add preload (for the HSTS preload lists of browsers)' }),
});

const httpListener = z.strictObject({
  ...common,
  protocol: z.literal('http').meta({ description: 'http: plain HTTP/1.1 (and h2c when asked)' }),
  limits: httpLimits,
  h2c: z
    .boolean()
    .default(false)
    .meta({ description: 'also serve HTTP/2 with prior knowledge (cleartext) on this port' }),
  redirectToHttps: z
    .union([z.boolean(), z.number().int().min(1).max(65535)])
    .default(false)
    .meta({
      description: 'answer every request with a 308 to https:// (true: the same host on port 443; a number: that port)',
      examples: [true, 8443],
    }),
});

const httpsListener = z
  .strictObject({
    ...common,
    protocol: z.literal('https').meta({ description: 'https: TLS, with HTTP/2 and HTTP/1.1 by ALPN' }),
    limits: httpLimits,
    tls: tlsSettings.optional().meta({
      description: 'certificates, versions, ciphers and client certificates of this listener (and/or acme)',
      examples: [{ certificates: [{ cert: 'certs/a.pem', key: 'certs/a-key.pem' }] }],
    }),
    acme: acmeSettings.optional().meta({
      description:
        "certificates obtained and renewed from an ACME CA (Let's Encrypt...); they win over tls.certificates for their names",
      examples: [
        {
          directory: 'https://acme-v02.api.letsencrypt.org/directory',
          email: 'ops@example.com',
          domains: ['api.example.com'],
          storage: '/var/lib/turnpike/acme',
        },
      ],
    }),
    hsts: hsts.optional().meta({
      description: 'send Strict-Transport-Security on every response of this listener',
      examples: [{ maxAge: '1y', includeSubDomains: true }],
    }),
    http2: z.boolean().default(true).meta({ description: 'offer h2 through ALPN (http/1.1 is always offered)' }),
  })
  .superRefine((l, ctx) => {
    if (l.tls === undefined && l.acme === undefined)
      ctx.addIssue({ code: 'custom', message: 'an https listener takes tls, acme or both' });
  });

const sniRoute = z.strictObject({
  serverName: z
    .string()
    .regex(/^(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$/, {
      message: 'expected a host name, *.example.com, or "*" for the rest',
    })
    .meta({
      description: 'the ClientHello server name: a host, *.example.com, or "*" for every other name',
      examples: ['db.example.com'],
    }),
  upstream: z
    .string()
    .min(1)
    .meta({ description: 'the upstream (of tcp:// targets) that gets these connections', examples: ['db-tls'] }),
});

const tcpListener = z
  .strictObject({
    ...common,
    protocol: z.literal('tcp').meta({ description: 'tcp: forward bytes to an upstream of tcp:// targets' }),
    upstream: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'the upstream (of tcp:// targets) that gets every connection', examples: ['pg'] }),
    sni: z
      .array(sniRoute)
      .min(1)
      .optional()
      .meta({
        description: 'TLS passthrough: pick the upstream by the ClientHello server name',
        examples: [[{ serverName: 'a.example.com', upstream: 'a-tls' }]],
      }),
    tls: tlsSettings.optional().meta({
      description: 'terminate TLS here and forward plain bytes',
      examples: [{ certificates: [{ cert: 'certs/a.pem', key: 'certs/a-key.pem' }] }],
    }),
    connectTimeout: duration
      .prefault('5s')
      .meta({ description: 'time to connect to a target; then the next target is tried once', examples: ['2s'] }),
    idleTimeout: duration
      .prefault('1h')
      .meta({ description: 'a connection with no byte either way for this long is closed', examples: ['10m'] }),
  })
  .superRefine((l, ctx) => {
    if ((l.upstream === undefined) === (l.sni === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a tcp listener takes either upstream or sni (TLS passthrough by server name)',
      });
    }
    if (l.sni !== undefined && l.tls !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: 'sni routes TLS without terminating it; tls terminates it: choose one',
      });
    }
  });

const udpListener = z.strictObject({
  ...common,
  protocol: z.literal('udp').meta({ description: 'udp: forward datagrams to an upstream of udp:// targets' }),
  upstream: z
    .string()
    .min(1)
    .meta({ description: 'the upstream (of udp:// targets) that gets the datagrams', examples: ['dns'] }),
  idleTimeout: duration
    .prefault('30s')
    .meta({ description: 'a client mapping with no datagram for this long is dropped', examples: ['1m'] }),
  maxClients: z
    .number()
    .int()
    .min(1)
    .default(10_000)
    .meta({
      description:
        'client mappings (an upstream socket each) kept at once; past it a new client evicts the oldest mapping',
      examples: [50000],
    }),
});

export const listener = z
  .discriminatedUnion('protocol', [httpListener, httpsListener, tcpListener, udpListener], {
    error: (issue) => (issue.code === 'invalid_union' ? 'expected "http", "https", "tcp" or "udp"' : undefined),
  })
  .meta({ examples: [{ name: 'web', protocol: 'http', port: 8080 }] });

export type HttpListenerConfig = z.output<typeof httpListener>;
export type HttpsListenerConfig = z.output<typeof httpsListener>;
export type TcpListenerConfig = z.output<typeof tcpListener>;
export type UdpListenerConfig = z.output<typeof udpListener>;
export type TlsSettings = z.output<typeof tlsSettings>;
