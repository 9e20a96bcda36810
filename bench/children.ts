// Child process bookkeeping: every process the bench starts — and every process those start (nginx and
// Turnpike workers) — is killed when the bench exits, whether it finishes, throws, or is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { processTree } from './procstat.ts';

const live = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) if (child.pid !== undefined) killTree(child.pid, 'SIGKILL');
    for (const fn of cleanups) {
      try {
        fn();
      } catch {
        // best effort: we are exiting anyway
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal} received, stopping child processes\n`);
      process.exit(130);
    });
  }
}

/** Signals a process and all its descendants (listed before the signal, so re-parented ones are not missed). */
function killTree(pid: number, signal: NodeJS.Signals, tree: readonly number[] = processTree(pid)): void {
  for (const p of tree) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs `fn` when the bench process exits, for any reason. */
export function atExit(fn: () => void): void {
  hookExit();
  cleanups.push(fn);
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  /** The last few KB of combined stdout and stderr, for error messages. */
  tail(): string;
  /** The first few KB of stderr alone. */
  stderrHead(): string;
  /** Resolves with the first match of `re` in the output; rejects if the process exits or time runs out. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL to the whole process tree after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const TAIL_BYTES = 16 * 1024;

export interface StartOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Long-running servers: started in their own process group, which a watchdog kills if the bench dies
   *  without running its exit hooks (SIGKILL, OOM) — nginx workers, Turnpike workers and all. */
  readonly guard?: boolean;
}

let watchdog: ChildProcess | undefined;

/**
 * A shell that collects process group ids and directories on its stdin and, when that closes (the bench
 * exited, however it exited), SIGKILLs the groups and removes the directories. After a normal exit they are
 * already gone and this is a no-op.
 */
function tellWatchdog(line: string): void {
  if (!watchdog) {
    const script =
      'gs=; ds=; while read -r x; do case "$x" in /*) ds="$ds $x" ;; *) gs="$gs -$x" ;; esac; done; ' +
      '[ -n "$gs" ] && kill -9 $gs 2>/dev/null; [ -n "$ds" ] && rm -rf $ds; exit 0';
    watchdog = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    watchdog.unref();
    watchdog.stdin!.on('error', () => {});
  }
  watchdog.stdin!.write(`${line}\n`);
}

/** Removes a temporary directory when the bench exits, even if it is SIGKILLed (no spaces in the path). */
export function removeOnExit(dir: string): void {
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  if (process.platform !== 'win32' && !/\s/.test(dir)) tellWatchdog(dir);
}

export function startChild(command: string, args: readonly string[], options: StartOptions = {}): Child {
  hookExit();
  // stdin stays a pipe: children that watch it (bench/backend.ts) exit when we disappear.
  const guard = options.guard === true && process.platform !== 'win32';
  const proc = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: guard,
  });
  live.add(proc);
  if (guard && proc.pid !== undefined) tellWatchdog(String(proc.pid));
  let output = '';
  let stderr = '';
  let exitedFlag = false;
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > TAIL_BYTES * 2) output = output.slice(-TAIL_BYTES);
    for (const fn of listeners) fn();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < TAIL_BYTES) stderr += chunk.toString('utf8');
  });
  proc.stdin!.on('error', () => {}); // the child may close stdin early; that is fine
  const exited = new Promise<number | string>((resolve) => {
    proc.on('error', (err) => {
      output += `\n${err.message}\n`;
      exitedFlag = true;
      live.delete(proc);
      resolve(-1);
      for (const fn of listeners) fn();
    });
    proc.on('exit', (code, signal) => {
      exitedFlag = true;
      live.delete(proc);
      resolve(code ?? signal ?? -1);
      for (const fn of listeners) fn();
    });
  });

  return {
    proc,
    pid: proc.pid ?? -1,
    exited,
    hasExited: () => exitedFlag,
    tail: () => output.slice(-TAIL_BYTES),
    stderrHead: () => stderr,
    waitForOutput(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = output.match(re);
          if (m) done(() => resolve(m));
          else if (exitedFlag) done(() => reject(new Error(`${command} exited before printing ${re}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`${command} did not print ${re} within ${timeoutMs} ms`))),
          timeoutMs,
        );
        const done = (fn: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          fn();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 3000) {
      if (exitedFlag || proc.pid === undefined) return;
      const tree = processTree(proc.pid);
      proc.kill('SIGTERM');
      const timer = setTimeout(() => killTree(proc.pid!, 'SIGKILL', tree), graceMs);
      await exited;
      clearTimeout(timer);
      // Workers that outlived their parent (nginx workers do) go too.
      killTree(
        proc.pid,
        'SIGKILL',
        tree.slice(1).filter((p) => existsSync(`/proc/${p}`)),
      );
    },
  };
}

export interface CommandResult {
  readonly code: number | string;
  readonly output: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion with a hard time limit; output is stdout and stderr combined. */
export async function runCommand(
  command: string,
  args: readonly string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<CommandResult> {
  const child = startChild(command, args, { env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.proc.kill('SIGKILL');
  }, timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, output: child.tail(), timedOut };
}
