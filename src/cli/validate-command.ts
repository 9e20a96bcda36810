// `turnpike validate`: checks config files for CI. Files as arguments or `-c` (each one checked), `-` for
// standard input, `--no-files` for jobs without the certificates and keys, `--format json`, and `--strict` for
// the warnings of src/config/lint.ts.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  ConfigError,
  formatProblem,
  loadConfigFile,
  loadConfigText,
  type LoadedConfig,
  type LoadOptions,
} from '../config/loader.ts';
import { lintConfig } from '../config/lint.ts';
import type { ConfigProblem } from '../config/problems.ts';
import { LOAD_OPTIONS } from '../runtime/config-checks.ts';

/** How standard input is named in problems. */
export const STDIN_NAME = '<stdin>';

export interface ValidateOptions {
  readonly config: string[];
  readonly files: boolean;
  readonly format: 'text' | 'json';
  readonly strict: boolean;
}

type Severity = 'error' | 'warning';

export interface FileResult {
  readonly file: string;
  readonly valid: boolean;
  readonly summary?: { listeners: number; upstreams: number; routes: number };
  readonly problems: readonly (ConfigProblem & { severity: Severity })[];
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      'check config files as start does; exits 0 when every file is valid, 1 with every problem listed otherwise',
    )
    .argument('[files...]', 'config files (YAML or JSON); - reads standard input')
    .option('-c, --config <file>', 'a config file (repeatable; - reads standard input)', collect, [])
    .option('--no-files', 'do not open the files a config names (certificates, keys, log paths): CI without them')
    .option('--format <format>', 'text or json', 'text')
    .option('--strict', 'also warn (exit 1) on shadowed routes, duplicate matches, unused names, passwords in URLs')
    .action((args: string[], opts: ValidateOptions, cmd: Command) => {
      if (opts.format !== 'text' && opts.format !== 'json') cmd.error('error: --format must be text or json');
      const names = [...opts.config, ...args];
      if (names.length === 0)
        cmd.error('error: name a config file: turnpike validate FILE (or -c FILE, or - for stdin)');
      if (names.filter((n) => n === '-').length > 1) cmd.error('error: standard input (-) can be read once');
      const results = names.map((name) => validateOne(name, opts));
      const ok = results.every((r) => r.valid);
      if (opts.format === 'json') {
        const problems = results.flatMap((r) => r.problems);
        process.stdout.write(`${JSON.stringify({ valid: ok, files: results.map(fileEntry), problems }, null, 2)}\n`);
      } else {
        for (const r of results) printText(r);
      }
      process.exitCode = ok ? 0 : 1;
    });
}

export function validateOne(name: string, opts: ValidateOptions): FileResult {
  const options = {
    ...LOAD_OPTIONS,
    readFiles: opts.files,
    ...(opts.strict ? { lint: lintConfig } : {}),
  };
  let loaded: LoadedConfig;
  try {
    loaded = loadNamed(name, options);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.problems;
    return {
      file: name === '-' ? STDIN_NAME : name,
      valid: false,
      problems: problems.map((p) => ({ ...p, severity: 'error' })),
    };
  }
  const { config, warnings } = loaded;
  return {
    file: name === '-' ? STDIN_NAME : name,
    valid: warnings.length === 0,
    summary: {
      listeners: config.listeners.length,
      upstreams: Object.keys(config.upstreams).length,
      routes: config.routes.length,
    },
    problems: warnings.map((p) => ({ ...p, severity: 'warning' })),
  };
}

/** Loads `name`, or standard input for `-` (relative paths in it start at the working directory). */
export function loadNamed(name: string, options: LoadOptions): LoadedConfig {
  return name === '-' ? loadConfigText(readStdin(), STDIN_NAME, options) : loadConfigFile(name, options);
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    throw new ConfigError([
      {
        code: 'TP_CONFIG_NOT_FOUND',
        file: STDIN_NAME,
        line: 0,
        column: 0,
        path: '',
        message: `cannot read config: ${(err as Error).message}`,
      },
    ]);
  }
}

function fileEntry(r: FileResult): object {
  return { file: r.file, valid: r.valid, ...(r.summary ? r.summary : {}) };
}

export function printText(r: FileResult): void {
  for (const p of r.problems) process.stderr.write(`${p.severity}: ${formatProblem(p)}\n`);
  if (r.summary === undefined) return;
  const { listeners, upstreams, routes } = r.summary;
  const counts = `${listeners} listeners, ${upstreams} upstreams, ${routes} routes`;
  const warned = r.problems.length === 0 ? '' : `, ${r.problems.length} warning${r.problems.length === 1 ? '' : 's'}`;
  process.stdout.write(`${r.file}: valid (${counts})${warned}\n`);
}
