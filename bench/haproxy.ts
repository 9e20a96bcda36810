// HAProxy as a reverse proxy target: HTTP mode, one thread, server connections reused across clients.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, type Child } from './children.ts';
import { freePort, waitFor200, waitUntil } from './net.ts';
import { TOOLS, toolPath } from './system.ts';

export interface HAProxy {
  readonly child: Child;
  readonly port: number;
}

export function haproxyConfig(port: number, backendPort: number): string {
  return `global
  nbthread 1
  # HAProxy needs about 2 descriptors per connection and refuses to start past the process's FD limit.
  maxconn 4096

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
  bind 127.0.0.1:${port}
  default_backend backend

backend backend
  server b1 127.0.0.1:${backendPort}
`;
}

export async function startHAProxy(dir: string, backendPort: number): Promise<HAProxy> {
  const port = await freePort();
  const child = await launchHAProxy(dir, haproxyConfig(port, backendPort), () =>
    waitFor200(`http://127.0.0.1:${port}/100b`, 1000),
  );
  return { child, port };
}

/** Starts HAProxy on `config` (written to dir/haproxy.cfg) and waits until `probe` succeeds. */
export async function launchHAProxy(dir: string, config: string, probe: () => Promise<void>): Promise<Child> {
  const bin = toolPath(TOOLS.haproxy);
  if (!bin) throw new Error(`haproxy not found — install it with: apt-get install -y ${TOOLS.haproxy.apt}`);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  // -db: foreground, no daemon; the process we start is the one that serves.
  const child = startChild(bin, ['-db', '-f', file], { guard: true });
  try {
    await waitUntil('haproxy', probe, 10_000, () => child.hasExited());
  } catch (err) {
    const why =
      child
        .stderrHead()
        .trim()
        .split('\n')
        .find((l) => /ALERT|error/i.test(l)) ?? (err as Error).message;
    await child.stop(1000);
    throw new Error(why);
  }
  return child;
}
