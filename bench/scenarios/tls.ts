// The TLS-terminating targets of the https-h1 and https-h2 scenarios: Turnpike, nginx and HAProxy with the same
// certificate (ECDSA P-256, made with openssl at bench start) and the same TLS 1.3 cipher suite, each offering h2
// and http/1.1 by ALPN (wrk speaks http/1.1, h2load h2), proxying in clear to the plain scenario's backend.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { startChild, type Child } from '../children.ts';
import { launchHAProxy } from '../haproxy.ts';
import { freePort, waitUntil } from '../net.ts';
import { KEEPALIVE_REQUESTS, launchNginx, prepare, proxyConfig } from '../nginx.ts';
import { CLI } from '../turnpike.ts';

/** TLS 1.3 only, one suite: what every client of 2026 negotiates first, and the cheapest AEAD with AES-NI. */
export const TLS_VERSION = 'TLSv1.3';
export const TLS_SUITE = 'TLS_AES_128_GCM_SHA256';
/** The key exchange group, pinned where the proxy lets us (nginx, HAProxy); Turnpike (Node) agrees on X25519
 *  with wrk and h2load because their OpenSSL 3.0 offers nothing newer first. */
export const TLS_GROUP = 'X25519';

export interface BenchCert {
  readonly cert: string;
  readonly key: string;
  /** Certificate then key, in one file (HAProxy's `crt`). */
  readonly combined: string;
}

/** A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, valid two days. */
export function makeCert(dir: string): BenchCert {
  const cert = join(dir, 'bench-cert.pem');
  const key = join(dir, 'bench-key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'pipe', timeout: 10_000 },
  );
  const combined = join(dir, 'bench-combined.pem');
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, combined };
}

export interface TlsTarget {
  readonly name: string;
  readonly describe: string;
  readonly child: Child;
  readonly port: number;
  readonly accessLog?: string;
}

/** What a client with OpenSSL 3.0's defaults (wrk's, h2load's) gets from the listener: checked before measuring. */
export interface Negotiated {
  readonly protocol: string;
  readonly cipher: string;
  readonly group: string;
  readonly alpn: string;
}

export function negotiated(port: number): Promise<Negotiated> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        ALPNProtocols: ['h2', 'http/1.1'],
        ecdhCurve: 'X25519:prime256v1:secp384r1', // OpenSSL 3.0's client default (no post-quantum hybrid)
      },
      () => {
        const info = {
          protocol: socket.getProtocol() ?? '?',
          cipher: socket.getCipher().standardName,
          group: (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? '?',
          alpn: socket.alpnProtocol || 'none',
        };
        socket.destroy();
        resolve(info);
      },
    );
    socket.setTimeout(3000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

/** A 200 of the right size over HTTPS/1.1 and over h2: the target is ready for both scenarios. */
async function probe(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/100b', rejectUnauthorized: false, agent: false, timeout: 1000 },
      (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () =>
          res.statusCode === 200 && n === 100 ? resolve() : reject(new Error(`h1: ${res.statusCode}, ${n} B`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('h1 timed out')));
    req.on('error', reject);
  });
  await new Promise<void>((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request({ ':path': '/100b' });
    let status = 0;
    let n = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      session.close();
      if (status === 200 && n === 100) resolve();
      else reject(new Error(`h2: ${status}, ${n} B`));
    });
    req.on('error', reject);
    req.setTimeout(1000, () => req.close());
  });
}

export async function startTurnpikeTls(dir: string, backendPort: number, cert: BenchCert): Promise<TlsTarget> {
  const port = await freePort();
  const accessLog = join(dir, 'turnpike-tls-access.log');
  const file = join(dir, 'turnpike-tls.yaml');
  const config = {
    listeners: [
      {
        name: 'bench-tls',
        protocol: 'https',
        address: '127.0.0.1',
        port,
        tls: {
          certificates: [{ cert: cert.cert, key: cert.key }],
          minVersion: TLS_VERSION,
          ciphers: TLS_SUITE,
        },
        http2: true,
      },
    ],
    limits: { maxRequestsPerConnection: KEEPALIVE_REQUESTS }, // as nginx's keepalive_requests (h2load does not reconnect)
    upstreams: { backend: { targets: [{ url: `http://127.0.0.1:${backendPort}` }] } },
    routes: [{ name: 'all', match: { path: '/' }, upstream: 'backend' }],
    accessLog: { enabled: true, output: accessLog },
    shutdown: { drainTimeout: '1s' },
  };
  writeFileSync(file, stringify(config));
  const child = startChild(process.execPath, [...NODE_FLAGS, CLI, 'start', '--config', file], { guard: true });
  try {
    await waitUntil(
      `turnpike https on ${port}`,
      () => probe(port),
      15_000,
      () => child.hasExited(),
    );
  } catch (err) {
    const why = child.hasExited() ? child.stderrHead().trim().split('\n')[0] : undefined;
    await child.stop(1000);
    throw new Error(why || (err as Error).message);
  }
  return {
    name: 'turnpike-tls',
    describe: `Turnpike, one process, https listener (h2 and http/1.1 by ALPN), ${TLS_VERSION} ${TLS_SUITE}, access log to a file`,
    child,
    port,
    accessLog,
  };
}

export async function startNginxTls(dir: string, backendPort: number, cert: BenchCert): Promise<TlsTarget> {
  prepare(dir);
  const port = await freePort();
  const accessLog = join(dir, 'access.log');
  const server = [
    `    ssl_certificate ${cert.cert};`,
    `    ssl_certificate_key ${cert.key};`,
    `    ssl_protocols ${TLS_VERSION};`,
    `    ssl_conf_command Ciphersuites ${TLS_SUITE};`,
    `    ssl_ecdh_curve ${TLS_GROUP};`,
    '    ssl_session_cache shared:SSL:10m;',
  ].join('\n');
  const config = proxyConfig(dir, port, backendPort, '1', accessLog, { listen: 'ssl http2', server });
  const child = await launchNginx(dir, port, config, () => probe(port));
  return {
    name: 'nginx-tls',
    describe: `nginx 1 worker, listen ssl http2, ${TLS_VERSION} ${TLS_SUITE} (ssl_conf_command Ciphersuites), upstream keepalive 64, access_log buffered`,
    child,
    port,
    accessLog,
  };
}

export async function startHAProxyTls(dir: string, backendPort: number, cert: BenchCert): Promise<TlsTarget> {
  const port = await freePort();
  const config = `global
  nbthread 1
  maxconn 4096
  tune.ssl.default-dh-param 2048

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-request 10s
  timeout http-keep-alive 120s

frontend bench
  bind 127.0.0.1:${port} ssl crt ${cert.combined} alpn h2,http/1.1 ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 ciphersuites ${TLS_SUITE} curves ${TLS_GROUP}
  default_backend backend

backend backend
  server b1 127.0.0.1:${backendPort}
`;
  const child = await launchHAProxy(dir, config, () => probe(port));
  return {
    name: 'haproxy-tls',
    describe: `HAProxy mode http, nbthread 1, bind ssl alpn h2,http/1.1, ${TLS_VERSION} ${TLS_SUITE}, http-reuse always, no log`,
    child,
    port,
  };
}
