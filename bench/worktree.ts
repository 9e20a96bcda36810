// Compare mode (`--compare BASE`): another revision of Turnpike as a git worktree under the temp directory, with
// its dependencies and its own dist/ build. The worktree is kept and reused by later runs against the same commit
// (remove it with `git worktree remove --force <dir>`).
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { runCommand } from './children.ts';
import type { Build } from './turnpike.ts';

/** The checkout the bench runs from. */
export const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface Revision extends Build {
  /** As given on the command line (`HEAD~3`, a tag, a hash). */
  readonly rev: string;
  readonly commit: string;
  readonly short: string;
  readonly subject: string;
  readonly dir: string;
  /** `linked`: this checkout's node_modules (same dependencies); `installed`: its own `npm ci`. */
  readonly deps: 'linked' | 'installed';
  /** Whether dist/ was built by this run (else reused from an earlier one). */
  readonly built: boolean;
  /** Whether it has no src/runtime/node-flags.ts of its own and runs with this checkout's flags. */
  readonly flagsBorrowed: boolean;
}

/** git's output without the trailing newline (leading spaces are kept: `status --porcelain` starts with one). */
export const git = (args: readonly string[], cwd = REPO): string =>
  execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).replace(
    /\s+$/,
    '',
  );

/** The full hash of `rev`, or undefined when it names no commit. */
export function resolveCommit(rev: string): string | undefined {
  try {
    return git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  } catch {
    return undefined;
  }
}

/** What decides node_modules: the declared dependencies and every locked version (not scripts or the version). */
function dependencyKey(root: string): string {
  const read = (f: string) => {
    try {
      return JSON.parse(readFileSync(join(root, f), 'utf8'));
    } catch {
      return {};
    }
  };
  const pkg = read('package.json');
  const { '': _root, ...locked } = read('package-lock.json').packages ?? {};
  return JSON.stringify([pkg.dependencies, pkg.devDependencies, locked]);
}

/** The worktree of `commit`: reused when it is there, else added (detached; --force re-adds one whose directory
 *  was removed from the temp directory without `git worktree remove`). */
function worktree(commit: string, dir: string): void {
  if (existsSync(dir)) {
    let at: string | undefined;
    try {
      at =
        resolve(git(['rev-parse', '--show-toplevel'], dir)) === resolve(dir)
          ? git(['rev-parse', 'HEAD'], dir)
          : undefined;
    } catch {
      // not a worktree
    }
    if (at === commit) return;
    throw new Error(
      `${dir} exists but is not a worktree at ${commit.slice(0, 10)}: remove it (git worktree remove --force ${dir})`,
    );
  }
  git(['worktree', 'add', '--force', '--detach', dir, commit]);
}

/** node_modules for the worktree: a link to this checkout's when the dependencies are the same, else `npm ci`. */
async function dependencies(dir: string): Promise<'linked' | 'installed'> {
  const nm = join(dir, 'node_modules');
  const linked = existsSync(nm) && lstatSync(nm).isSymbolicLink();
  if (dependencyKey(dir) === dependencyKey(REPO)) {
    if (!existsSync(nm)) symlinkSync(join(REPO, 'node_modules'), nm, 'dir');
    return existsSync(nm) && lstatSync(nm).isSymbolicLink() ? 'linked' : 'installed';
  }
  if (linked) rmSync(nm); // this checkout's dependencies changed since the link was made
  if (!existsSync(join(nm, '.package-lock.json'))) {
    console.error(`${dir}: dependencies differ from this checkout's, running npm ci there…`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const res = await runCommand(npm, ['ci', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error'], 600_000);
    if (res.code !== 0)
      throw new Error(
        `npm ci in ${dir} failed (${res.timedOut ? 'timed out' : `exit ${res.code}`}): ${res.output.trim().slice(-300)}`,
      );
  }
  return 'installed';
}

/** Its own V8 flags from its build (dist/runtime/node-flags.js), or undefined when that revision has none. */
async function ownFlags(dir: string): Promise<readonly string[] | undefined> {
  const file = join(dir, 'dist', 'runtime', 'node-flags.js');
  if (!existsSync(file)) return undefined;
  return ((await import(pathToFileURL(file).href)) as { NODE_FLAGS?: readonly string[] }).NODE_FLAGS;
}

/**
 * Checks out `rev` under the temp directory, gives it node_modules and builds its dist/ (`tsc -p
 * tsconfig.build.json`, as `npm run build` does) unless a stamp says this commit was built there with these
 * dependencies already. Throws with a one-line reason when any step fails.
 */
export async function prepareRevision(rev: string): Promise<Revision> {
  const commit = resolveCommit(rev);
  if (!commit) throw new Error(`"${rev}" names no commit in ${REPO}`);
  const short = commit.slice(0, 10);
  const dir = join(os.tmpdir(), `turnpike-bench-rev-${short}`);
  worktree(commit, dir);
  const deps = await dependencies(dir);
  const stampFile = join(dir, 'dist', '.turnpike-bench-build');
  const stamp = `${commit} ${deps}\n`;
  const cli = join(dir, 'dist', 'cli', 'main.js');
  let built = false;
  if (!existsSync(cli) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    console.error(`building ${short} in ${dir} (tsc -p tsconfig.build.json)…`);
    const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
    const res = await runCommand(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], 300_000);
    // tsc emits despite type errors; an old revision checked against newer @types still runs, so only a missing
    // CLI is fatal.
    if (!existsSync(cli)) throw new Error(`the build of ${short} made no ${cli}: ${res.output.trim().slice(-300)}`);
    if (res.code !== 0)
      console.error(
        `tsc reported errors for ${short} (exit ${res.code}); running what it emitted:\n${res.output.trim().slice(-600)}`,
      );
    writeFileSync(stampFile, stamp);
    built = true;
  }
  const flags = await ownFlags(dir);
  return {
    rev,
    commit,
    short,
    dir,
    deps,
    built,
    cli,
    subject: git(['log', '-1', '--format=%s', commit]),
    nodeFlags: flags ?? NODE_FLAGS,
    flagsBorrowed: flags === undefined,
  };
}

export interface Checkout {
  readonly commit: string;
  readonly short: string;
  /** Files under src/ (and the manifests) that differ from HEAD: what the head build has beyond the commit. */
  readonly uncommitted: readonly string[];
  /** Source files newer than dist/cli/main.js (a build that may not be what src/ says). */
  readonly newerThanBuild: readonly string[];
}

/** This checkout as the head side of a comparison: its commit, uncommitted source changes, and stale build. */
export function describeCheckout(cli: string): Checkout {
  const commit = git(['rev-parse', 'HEAD']);
  const uncommitted = git([
    'status',
    '--porcelain',
    '--',
    'src',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
  const builtAt = existsSync(cli) ? lstatSync(cli).mtimeMs : 0;
  const newerThanBuild = git(['ls-files', '--cached', '--others', '--exclude-standard', '--', 'src'])
    .split('\n')
    .filter((f) => f.endsWith('.ts') && existsSync(join(REPO, f)) && lstatSync(join(REPO, f)).mtimeMs > builtAt);
  return { commit, short: commit.slice(0, 10), uncommitted, newerThanBuild };
}
