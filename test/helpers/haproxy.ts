// Debian's HAProxy (`haproxy`, /usr/sbin) in TCP mode in front of several gateways, for the tests of several
// instances: round robin, each server health-checked with GET /readyz on its admin port, connects retried and
// redispatched. Its stats socket tells the test what HAProxy thinks of each server (UP, DOWN).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { until } from './wait.ts';

export interface HaproxyServer {
  /** The gateway's HTTP listener. */
  readonly port: number;
  /** Its admin listener (GET /readyz is the health check). */
  readonly adminPort: number;
}

export interface Haproxy {
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
  readonly process: ChildProcess;
  /** The generated configuration (for a failure message). */
  readonly config: string;
  /** Each server's status as HAProxy's stats say (`UP` once a check passed, `DOWN`...), by name: s0, s1, ... */
  states(): Promise<Record<string, string>>;
  /** Waits until every server named has `status` (UP or DOWN). */
  untilStates(want: Record<string, 'UP' | 'DOWN'>, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const HAPROXY = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';

export async function startHaproxy(
  servers: readonly HaproxyServer[],
  options: { sendProxyV2?: boolean; checkInterval?: string } = {},
): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-haproxy-'));
  const port = await freePort(); // HAProxy cannot report a port 0 it bound
  const socket = join(dir, 'stats.sock');
  const inter = options.checkInterval ?? '200ms';
  const config = `global
  maxconn 2000
  stats socket ${socket} level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  # HAProxy in TCP mode can retry only a failed connect (the request bytes are the client's, not HAProxy's)
  retries 3
  option redispatch
frontend fe
  bind 127.0.0.1:${port}
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /readyz
${servers
  .map(
    (s, i) =>
      `  server s${i} 127.0.0.1:${s.port} check port ${s.adminPort} inter ${inter} fall 1 rise 1${options.sendProxyV2 ? ' send-proxy-v2' : ''}`,
  )
  .join('\n')}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const child = spawn(HAPROXY, ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = once(child, 'exit');

  const command = (line: string) =>
    new Promise<string>((resolve, reject) => {
      const c = connect(socket);
      let out = '';
      c.setEncoding('utf8');
      c.on('data', (s: string) => (out += s));
      c.on('end', () => resolve(out));
      c.on('error', reject);
      c.end(`${line}\n`);
    });
  const states = async () => {
    const [header, ...rows] = (await command('show stat')).trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const [px, sv, status, check] = ['pxname', 'svname', 'status', 'check_status'].map((c) => columns.indexOf(c));
    const result: Record<string, string> = {};
    for (const row of rows) {
      const cells = row.split(',');
      // A server is UP before its first check: UP counts once a check has passed (L7OK).
      if (cells[px!] === 'gateways' && /^s\d+$/.test(cells[sv!]!))
        result[cells[sv!]!] = cells[status!] === 'UP' && cells[check!] !== 'L7OK' ? 'UP (unchecked)' : cells[status!]!;
    }
    return result;
  };
  const haproxy: Haproxy = {
    port,
    process: child,
    config,
    states,
    async untilStates(want, timeoutMs = 10_000) {
      await until(
        async () => {
          const now = await states().catch(() => ({}) as Record<string, string>);
          return Object.entries(want).every(([name, status]) => now[name] === status);
        },
        `HAProxy to see ${JSON.stringify(want)} (stderr: ${stderr})`,
        timeoutMs,
        20,
      );
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Up once its stats socket answers and a check round has seen every server ready.
  await haproxy.untilStates(Object.fromEntries(servers.map((_, i) => [`s${i}`, 'UP'])));
  return haproxy;
}
