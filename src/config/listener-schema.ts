// The `listeners:` section: one entry per bound address, by protocol. HTTP and HTTPS listeners route requests;
// TCP and UDP listeners forward bytes or datagrams to an upstream (or, for TCP, by the TLS server name).
import { z } from 'zod';
import { cidr, duration, headerName, size } from './primitives.ts';
import { secret } from './secret.ts';

// A quoted `"${PORT}"` (needed inside a flow map, where `{` is YAML syntax) arrives as a string of digits.
const port = z.preprocess(
  (v) => (typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v),
  z.number().int().min(0).max(65535),
);

const common = {
  name: z.string().min(1),
  address: z.string().default('0.0.0.0'),
  port,
  trustedProxies: z.array(cidr).default([]),
  proxyProtocol: z.boolean().default(false).meta({
    description:
      'peers in trustedProxies must send a PROXY v1/v2 header first; the client it names stands for the peer',
  }),
  acceptSockets: z.number().int().min(1).max(64).default(16).meta({
    description:
      'listening sockets opened on the port with SO_REUSEPORT (Linux, FreeBSD); each event-loop turn accepts one connection per socket, so a burst of new connections is not queued behind the load (1 = one socket)',
  }),
};

export const mergeSlashes = z.boolean().meta({
  description:
    'read `//` in a path as `/` before routing and forward it merged (NGINX merge_slashes, on by default; Envoy merge_slashes), so `//admin` meets the ACLs of `/admin`',
});

export const escapedSlashes = z.enum(['reject', 'keep', 'unescape']).meta({
  description:
    '%2F and %5C in a path: reject the request with 400 (default), keep them escaped (routed and forwarded escaped), or unescape them to `/` before routing and forward that (Envoy path_with_escaped_slashes_action)',
});

export const pathParameters = z.enum(['reject', 'allow']).meta({
  description:
    '";" in a path (Tomcat and Spring strip `;jsessionid=x` before matching, so `/admin;x` is `/admin` to them): reject with 400 (default) or allow',
});

export const underscoreHeaders = z.enum(['reject', 'drop', 'allow']).meta({
  description:
    'header names with "_" (CGI backends read X_Auth_User as X-Auth-User): drop them (default), reject the request with 400, or allow them',
});

/** HTTP/2 bounds (global under `limits`, or per listener); the defaults are in schema.ts. */
export const h2Limits = {
  h2MaxConcurrentStreams: z.number().int().min(1).max(10_000).meta({
    description: 'HTTP/2 streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)',
  }),
  h2MaxResetsPerSecond: z.number().int().min(1).max(1_000_000).meta({
    description: 'RST_STREAM frames a client may send per second before its connection gets GOAWAY (rapid reset)',
  }),
  h2MaxControlFramesPerSecond: z.number().int().min(1).max(1_000_000).meta({
    description:
      'PING, SETTINGS, PRIORITY, empty DATA/HEADERS/CONTINUATION frames a client may send per second before GOAWAY',
  }),
  h2StreamIdleTimeout: duration.meta({
    description: 'an HTTP/2 stream with no frame sent or received for this long is reset (a zero window included)',
  }),
};
export const maxHeaderCount = z.number().int().min(1).max(10_000).meta({
  description: 'header fields a request may carry (HTTP/1.1); one more is answered 431 (Envoy and HAProxy: 100)',
});

export const maxUriLength = size
  .refine((n) => n >= 16, { message: 'expected at least 16b' })
  .meta({
    description: 'bytes of the request target (path and query); longer is answered 414 (NGINX: 8k, its header buffer)',
  });

// Slow clients and connection counts (NGINX client_body_timeout, send_timeout, limit_conn, keepalive_requests).
export const clientBodyTimeout = duration.meta({
  description:
    'a request body that sends nothing for this long (while the gateway waits to read it) is refused with 408 and its upstream request aborted; 0 = off',
});
export const sendTimeout = duration.meta({
  description:
    'a response the client does not read for this long (the gateway waiting to write, upstream reading paused) is aborted; 0 = off',
});
export const maxConnections = z.number().int().min(1).meta({
  description: 'open client connections per listener and process; more are closed as soon as accepted',
});
export const maxConnectionsPerClient = z.number().int().min(0).meta({
  description:
    'open connections per client address on a listener (the PROXY protocol client when used); more are closed as soon as accepted; 0 = no limit',
});
export const maxRequestsPerConnection = z.number().int().min(0).meta({
  description:
    'requests one connection may carry: the last response says Connection: close (HTTP/2: GOAWAY after that many streams); 0 = no limit',
});

const httpLimits = z
  .strictObject({
    maxHeaderSize: size.optional(),
    headerTimeout: duration.optional(),
    keepAliveTimeout: duration.optional(),
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
  .optional();

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

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
  certificates: z.array(z.strictObject({ cert: z.string().min(1), key: secret(z.string().min(1)) })).min(1),
  minVersion: tlsVersion.default('TLSv1.2'),
  maxVersion: tlsVersion.optional(),
  ciphers: z.string().min(1).default(MODERN_CIPHERS).meta({
    description: "OpenSSL cipher list; the default is Mozilla's intermediate profile: forward-secret AEAD suites only",
  }),
  clientAuth: z
    .strictObject({
      mode: z.enum(['off', 'optional', 'require']).default('off'),
      ca: z.string().min(1).optional(),
      forwardHeader: headerName
        .optional()
        .meta({ description: 'sends the verified client certificate subject and fingerprint upstream' }),
    })
    .refine((c) => c.mode === 'off' || c.ca !== undefined, {
      message: 'clientAuth needs a ca (the CA that signs client certificates) unless mode is off',
      path: ['ca'],
    })
    .optional(),
});

const hsts = z.strictObject({
  maxAge: duration
    .prefault('1y')
    .meta({ description: 'Strict-Transport-Security max-age: a duration such as 180d or 1y (sent in whole seconds)' }),
  includeSubDomains: z.boolean().default(false),
  preload: z.boolean().default(false),
});

const httpListener = z.strictObject({
  ...common,
  protocol: z.literal('http'),
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
    }),
});

const httpsListener = z.strictObject({
  ...common,
  protocol: z.literal('https'),
  limits: httpLimits,
  tls: tlsSettings,
  hsts: hsts.optional(),
  http2: z.boolean().default(true).meta({ description: 'offer h2 through ALPN (http/1.1 is always offered)' }),
});

const sniRoute = z.strictObject({
  serverName: z.string().regex(/^(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$/, {
    message: 'expected a host name, *.example.com, or "*" for the rest',
  }),
  upstream: z.string().min(1),
});

const tcpListener = z
  .strictObject({
    ...common,
    protocol: z.literal('tcp'),
    upstream: z.string().min(1).optional(),
    sni: z
      .array(sniRoute)
      .min(1)
      .optional()
      .meta({ description: 'TLS passthrough: pick the upstream by the ClientHello server name' }),
    tls: tlsSettings.optional().meta({ description: 'terminate TLS here and forward plain bytes' }),
    connectTimeout: duration.prefault('5s'),
    idleTimeout: duration.prefault('1h'),
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
  protocol: z.literal('udp'),
  upstream: z.string().min(1),
  idleTimeout: duration
    .prefault('30s')
    .meta({ description: 'a client mapping with no datagram for this long is dropped' }),
  maxClients: z.number().int().min(1).default(10_000),
});

export const listener = z.discriminatedUnion('protocol', [httpListener, httpsListener, tcpListener, udpListener], {
  error: (issue) => (issue.code === 'invalid_union' ? 'expected "http", "https", "tcp" or "udp"' : undefined),
});

export type HttpListenerConfig = z.output<typeof httpListener>;
export type HttpsListenerConfig = z.output<typeof httpsListener>;
export type TcpListenerConfig = z.output<typeof tcpListener>;
export type UdpListenerConfig = z.output<typeof udpListener>;
export type TlsSettings = z.output<typeof tlsSettings>;
