// nginx in two roles, each from a config generated into its own temp directory: the backend every target
// proxies to (static 100 B and 64 KiB files, no logging; the same files under /cached/ with Cache-Control for the
// cache case), and a reverse proxy target (upstream keep-alive, buffered access log to a file, as a production
// nginx runs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, type Child } from './children.ts';
import { freePort, waitFor200, waitUntil } from './net.ts';
import { TOOLS, toolPath } from './system.ts';

export interface Nginx {
  readonly child: Child;
  readonly port: number;
  /** Access log file (proxy role), truncated by the bench between windows. */
  readonly accessLog?: string;
}

export const BACKEND_FILES: Readonly<Record<string, number>> = { '100b': 100, '64k': 65536 };

/** The path under which the backends serve the same bodies as cacheable (turnpike-cache's route prefix), and the
 *  Cache-Control they send there. Nowhere else do they send one, so no other target's responses change. */
export const CACHED_PREFIX = '/cached/';
export const CACHED_CONTROL = 'max-age=3600';

/** Settings shared by both roles: everything in `dir`, foreground master, enough descriptors for 256 + pools. */
export function nginxMain(dir: string, workers: string): string {
  const asRoot = process.getuid?.() === 0 ? 'user root;\n' : ''; // workers must read files in our 0700 temp dir
  return `${asRoot}worker_processes ${workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; multi_accept on; }
`;
}

/** Requests one client connection may carry before the proxy closes it (HTTP/2: GOAWAY), for every proxy
 *  measured: nginx's keepalive_requests, Turnpike's limits.maxRequestsPerConnection (HAProxy has no limit). A client
 *  that does not reconnect (h2load) would otherwise stop after the first 1,000 on each connection. */
export const KEEPALIVE_REQUESTS = 100_000;

function httpCommon(dir: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${dir}/tmp/${k};`)
    .join('\n');
  return `${temp}
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 120s;
  server_tokens off;`;
}

export function backendConfig(dir: string, port: number): string {
  return `${nginxMain(dir, '1')}http {
${httpCommon(dir)}
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  open_file_cache max=16 inactive=1h;
  open_file_cache_valid 1h;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${dir}/www;
    location / { }
    location ${CACHED_PREFIX} {
      alias ${dir}/www/;
      add_header Cache-Control "${CACHED_CONTROL}";
    }
  }
}
`;
}

export function proxyConfig(
  dir: string,
  port: number,
  backendPort: number,
  workers: string,
  accessLog: string,
  /** Appended to the listen directive (`ssl http2`), and directives for the server block (certificate, cipher). */
  tls?: { readonly listen: string; readonly server: string },
): string {
  return `${nginxMain(dir, workers)}http {
${httpCommon(dir)}
  access_log ${accessLog} combined buffer=64k flush=1s;
  upstream b {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests ${KEEPALIVE_REQUESTS};
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ` ${tls.listen}` : ''} backlog=4096;${tls ? `\n${tls.server}` : ''}
    location / {
      proxy_pass http://b;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
`;
}

export function prepare(dir: string): void {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
}

/** Starts nginx on `config` and waits until `ready` (a path on http://127.0.0.1:port, or a probe) answers. */
export async function launchNginx(
  dir: string,
  port: number,
  config: string,
  ready: string | (() => Promise<void>),
): Promise<Child> {
  const bin = toolPath(TOOLS.nginx);
  if (!bin) throw new Error(`nginx not found — install it with: apt-get install -y ${TOOLS.nginx.apt}`);
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  // -e: startup errors go to our directory too, not /var/log/nginx (nginx ≥ 1.19.5).
  const child = startChild(bin, ['-p', dir, '-c', file, '-e', join(dir, 'error.log')], { guard: true });
  try {
    if (typeof ready === 'string')
      await waitFor200(`http://127.0.0.1:${port}${ready}`, 10_000, () => child.hasExited());
    else await waitUntil(`nginx on port ${port}`, ready, 10_000, () => child.hasExited());
  } catch (err) {
    const why = child.stderrHead().trim().split('\n')[0] || (err as Error).message;
    await child.stop(1000);
    throw new Error(why);
  }
  return child;
}

/** The backend: `/100b` and `/64k` are static files of exactly that size (and `/cached/100b`, `/cached/64k`). */
export async function startNginxBackend(dir: string): Promise<Nginx> {
  prepare(dir);
  mkdirSync(join(dir, 'www'), { recursive: true });
  for (const [name, size] of Object.entries(BACKEND_FILES))
    writeFileSync(join(dir, 'www', name), Buffer.alloc(size, 'a'));
  const port = await freePort();
  return { child: await launchNginx(dir, port, backendConfig(dir, port), '/100b'), port };
}

/** A proxy in front of the backend, `workers` being `1` or `auto`. */
export async function startNginxProxy(dir: string, backendPort: number, workers: string): Promise<Nginx> {
  prepare(dir);
  const port = await freePort();
  const accessLog = join(dir, 'access.log');
  return {
    child: await launchNginx(dir, port, proxyConfig(dir, port, backendPort, workers, accessLog), '/100b'),
    port,
    accessLog,
  };
}
