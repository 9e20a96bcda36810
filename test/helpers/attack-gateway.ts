// The gateway the attack catalogue (../shared/reliability-cases.md, test/attacks/) is run against: routes
// /public (open), /admin (API key), /api (JWT + rate limit), /cache (cached), /ws (WebSocket) and an open catch-all
// on an HTTP listener (HTTP/1.1 and h2c) and an HTTPS listener (TLS, ALPN h2), all to one upstream.
import { SignJWT } from 'jose';
import { makeTestPki } from './certs.ts';
import { startGatewayYaml } from './servers.ts';

export const ADMIN_KEY = 'admin-key-0123456789';
export const JWT_SECRET = 'catalogue-secret-0123456789abcdef0123';

export interface AttackGatewayOptions {
  /** Target URL of the one upstream. */
  readonly upstream: string;
  /** Added under `limits:` (global), e.g. `maxHeaderCount: 100`. */
  readonly limits?: string;
  /** Added inside the upstream's map, e.g. `retries: { attempts: 2 }`. */
  readonly upstreamExtra?: string;
  /** Rate limit of /api per client per minute (default 5). */
  readonly apiRequestsPerMinute?: number;
  /** Leaves out the open catch-all route `/` (on by default: the hard case for path tricks). */
  readonly noCatchAll?: boolean;
  /** Appended to the config as is (more top-level keys). */
  readonly extra?: string;
}

export async function startAttackGateway(options: AttackGatewayOptions) {
  const { pki, serverCa } = makeTestPki();
  const cert = pki.server(serverCa, { names: ['localhost', 'good.example'] });
  const gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0, h2c: true }
  - name: secure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
${options.limits ? `limits:\n${indent(options.limits, 2)}\n` : ''}consumers:
  - { name: operator, credentials: { apiKeys: ["${ADMIN_KEY}"] } }
upstreams:
  app:
    targets: [{ url: "${options.upstream}" }]
${options.upstreamExtra ? indent(options.upstreamExtra, 4) : ''}
routes:
  - { name: public, match: { path: /public }, upstream: app }
  - name: admin
    match: { path: /admin }
    upstream: app
    plugins: [{ key-auth: { header: x-api-key } }]
  - name: api
    match: { path: /api }
    upstream: app
    plugins:
      - jwt: { keys: [{ secret: "${JWT_SECRET}" }], algorithms: [HS256] }
      - rate-limit: { limits: [{ requests: ${options.apiRequestsPerMinute ?? 5}, per: 1m }], key: ip }
  - name: cache
    match: { path: /cache }
    upstream: app
    plugins: [{ cache: { maxObjectSize: 1mb, defaultTtl: 1m } }]
  - { name: ws, match: { path: /ws }, upstream: app }
${options.noCatchAll ? '' : '  - { name: open, match: { path: / }, upstream: app }\n'}${options.extra ?? ''}
`);
  return {
    gateway,
    /** HTTP/1.1 and h2c (prior knowledge). */
    http: gateway.port('web'),
    /** TLS, ALPN h2 and http/1.1; the server certificate is for localhost and good.example, signed by `ca`. */
    https: gateway.port('secure'),
    ca: serverCa.cert,
    /** A valid HS256 token for /api. */
    token: (claims: Record<string, unknown> = {}) =>
      new SignJWT({ sub: 'user-1', ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(JWT_SECRET)),
    stop: async () => {
      await gateway.stop();
      pki.remove();
    },
  };
}

const indent = (text: string, n: number): string =>
  text
    .trim()
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
