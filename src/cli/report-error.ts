// How a command that fails on a config (or anything else) says so: every config problem as
// `file:line:col key.path: message [CODE]`, or the error's message and code; then exit 1.
import { ConfigError, formatProblem } from '../config/loader.ts';

export function reportConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
  } else {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`error: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}\n`);
  }
  process.exit(1);
}
