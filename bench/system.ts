// The system programs the bench drives (wrk, nginx, HAProxy, redis-server): finding them, installing them with apt when
// we are root, and their versions for the report.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { runCommand } from './children.ts';

export interface Tool {
  readonly name: string;
  /** The Debian package that provides it. */
  readonly apt: string;
  /** Candidate paths; the first that exists wins, else the name is looked up on PATH. */
  readonly paths: readonly string[];
  readonly versionArgs: readonly string[];
}

export const TOOLS = {
  wrk: { name: 'wrk', apt: 'wrk', paths: ['/usr/bin/wrk'], versionArgs: ['-v'] },
  nginx: { name: 'nginx', apt: 'nginx', paths: ['/usr/sbin/nginx'], versionArgs: ['-v'] },
  haproxy: { name: 'haproxy', apt: 'haproxy', paths: ['/usr/sbin/haproxy'], versionArgs: ['-v'] },
  'redis-server': { name: 'redis-server', apt: 'redis-server', paths: ['/usr/bin/redis-server'], versionArgs: ['-v'] },
  h2load: { name: 'h2load', apt: 'nghttp2-client', paths: ['/usr/bin/h2load'], versionArgs: ['--version'] },
  openssl: { name: 'openssl', apt: 'openssl', paths: ['/usr/bin/openssl'], versionArgs: ['version'] },
  // Not a program: Debian builds nginx's stream module (the tcp-stream scenario) as a package of its own.
  'nginx-stream': {
    name: 'ngx_stream_module.so',
    apt: 'libnginx-mod-stream',
    paths: ['/usr/lib/nginx/modules/ngx_stream_module.so'],
    versionArgs: [],
  },
} as const satisfies Record<string, Tool>;
export type ToolName = keyof typeof TOOLS;

/** The command to run, or undefined when the tool is not installed. */
export function toolPath(tool: Tool): string | undefined {
  for (const p of tool.paths) if (existsSync(p)) return p;
  try {
    execFileSync(tool.name, tool.versionArgs, { stdio: 'ignore', timeout: 5000 });
    return tool.name;
  } catch (err) {
    // `wrk -v` exits with status 1 after printing its version; only ENOENT means it is missing.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : tool.name;
  }
}

/** The first line a tool prints about its version (wrk: stdout and exit 1; nginx, HAProxy: stderr / stdout). */
export function toolVersion(tool: Tool): string {
  const path = toolPath(tool);
  if (!path) return 'not installed';
  const res = spawnSync(path, tool.versionArgs, { encoding: 'utf8', timeout: 5000 });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
  return (
    out
      .split('\n')[0]!
      .replace(/\s*Copyright.*$/, '')
      .replace(/\s*-\s*https?:\S+\s*$/, '')
      .trim() || 'unknown'
  );
}

/**
 * Makes sure the tools are installed, running one `apt-get install` for the missing ones when we are root.
 * Returns the names still missing, each with a one-line hint on how to install it.
 */
export async function ensureTools(names: readonly ToolName[]): Promise<Map<ToolName, string>> {
  const missing = names.filter((n) => !toolPath(TOOLS[n]));
  const hint = (n: ToolName) => `${n} not found — install it with: apt-get install -y ${TOOLS[n].apt}`;
  if (missing.length === 0) return new Map();
  const packages = missing.map((n) => TOOLS[n].apt);
  if (process.getuid?.() !== 0) return new Map(missing.map((n) => [n, hint(n)]));
  console.error(`installing ${packages.join(', ')} with apt-get (waiting up to 3 min for the dpkg lock)…`);
  // Another apt may be running in the background: wait for its lock rather than failing at once.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let res = await runCommand('apt-get', ['install', '-y', '-o', 'DPkg::Lock::Timeout=150', ...packages], 180_000, env);
  if (res.code !== 0 && !res.timedOut) {
    // A stale package index is the usual cause; refresh it once.
    await runCommand('apt-get', ['update'], 120_000, env);
    res = await runCommand('apt-get', ['install', '-y', '-o', 'DPkg::Lock::Timeout=150', ...packages], 180_000, env);
  }
  if (res.code !== 0)
    console.error(`apt-get failed (${res.timedOut ? 'timed out' : `exit ${res.code}`}):\n${res.output.slice(-1500)}`);
  return new Map(missing.filter((n) => !toolPath(TOOLS[n])).map((n) => [n, hint(n)]));
}
