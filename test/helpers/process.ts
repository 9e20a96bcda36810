// The gateway CLI as a child process, for tests that measure the process itself (memory) or its signals.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { tempDir } from './servers.ts';
import { until } from './wait.ts';

const SOURCE_CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BUILT_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * The bin users run (dist/, built by `npm run build`, `npm start` and `npm test`) when it is at least as new as the sources;
 * otherwise the sources through Node's type stripping, which idles ~25 MB heavier.
 */
export const CLI =
  existsSync(BUILT_CLI) &&
  statSync(BUILT_CLI).mtimeMs >= newestMtime(fileURLToPath(new URL('../../src', import.meta.url)))
    ? BUILT_CLI
    : SOURCE_CLI;

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The config file the gateway runs (rewrite it and send SIGHUP to reload). */
  readonly file: string;
  /** Port of the first listener (or the one named). */
  port(name?: string): number;
  /** Every stderr line so far (the app log, JSON lines). */
  readonly logLines: string[];
  /** Sends SIGTERM and resolves with the exit code (null when killed by a signal). */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Writes `yaml` to a temp dir and runs `main.ts start --config FILE --no-watch [args]` under this Node.
 * Resolves once every listener has logged "listening".
 */
export async function spawnGateway(
  yaml: string,
  options: {
    listeners?: number;
    startTimeoutMs?: number;
    args?: readonly string[];
    /** Start from this --config instead (an etcd:// or redis:// URL; `yaml` is still written to `file`), watched. */
    config?: string;
  } = {},
): Promise<GatewayProcess> {
  const file = join(tempDir(), 'turnpike.yaml');
  writeFileSync(file, /^accessLog:/m.test(yaml) ? yaml : `${yaml}\naccessLog: { enabled: false }\n`);
  const config = options.config === undefined ? [file, '--no-watch'] : [options.config];
  const args = [...NODE_FLAGS, CLI, 'start', '--config', ...config, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const ports = new Map<string, number>();
  const logLines: string[] = [];
  const wanted = options.listeners ?? 1;
  let exited: { code: number | null } | null = null;
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = { code };
      resolve(code);
    }),
  );

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`gateway did not start within ${options.startTimeoutMs ?? 10_000} ms`)),
      options.startTimeoutMs ?? 10_000,
    );
    let pending = '';
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${logLines.join('\n')}`));
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        logLines.push(line);
        let entry: { msg?: string; listener?: string; port?: number } | undefined;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        if (entry?.msg === 'listening' && entry.listener !== undefined && entry.port !== undefined) {
          ports.set(entry.listener, entry.port);
          if (ports.size === wanted) {
            clearTimeout(timer);
            child.off('exit', early);
            resolve();
          }
        }
      }
    });
    const early = (code: number | null, signal: string | null) =>
      fail(new Error(`gateway exited early (code ${code}, signal ${signal})`));
    child.once('error', fail);
    child.once('exit', early);
  });

  return {
    child,
    pid: child.pid!,
    file,
    logLines,
    port(name) {
      const port = name === undefined ? ports.values().next().value : ports.get(name);
      if (port === undefined) throw new Error(`no listener ${name ?? ''}`);
      return port;
    },
    async stop(timeoutMs = 10_000) {
      if (exited !== null) return (exited as { code: number | null }).code;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** A field of /proc/<pid>/status in bytes (`VmHWM` is the peak resident set, `VmRSS` the current one). Linux only. */
export async function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * With workers, the first worker's "listening" line resolves spawnGateway; the primary logs "primary started"
 * once every worker has joined.
 */
export function untilWorkersStarted(gw: GatewayProcess, timeoutMs = 10_000): Promise<true> {
  return until(
    () => gw.logLines.some((l) => l.includes('primary started')),
    'the primary to report its workers started',
    timeoutMs,
  );
}

/** The child processes of `pid` (a primary's workers). Linux only. */
export function childPids(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(/\s+/).map(Number);
}
