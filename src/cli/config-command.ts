// `turnpike config --resolved`: the config as the gateway runs it (Envoy's config dump): defaults filled in,
// `${VAR}` expanded, secrets "[redacted]" by the same schema walk as GET /api/config (src/admin/redact.ts).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { redactConfig } from '../admin/redact.ts';
import { ConfigError, formatProblem } from '../config/loader.ts';
import type { PluginEntry } from '../config/schema.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { LOAD_OPTIONS } from '../runtime/config-checks.ts';
import { loadNamed } from './validate-command.ts';

const HEADER =
  '# resolved by turnpike: defaults filled in, ${VAR} expanded, secrets redacted;\n' +
  '# durations in milliseconds and sizes in bytes, as the gateway reads them\n';

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the config as the gateway runs it: defaults filled in, ${VAR} expanded, secrets redacted')
    .requiredOption('--resolved', 'after defaults and ${VAR} expansion (the one form printed today)')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON); - reads standard input')
    .option('--no-files', 'do not open the files the config names (certificates, keys, log paths)')
    .option('--format <format>', 'yaml or json', 'yaml')
    .action((opts: { config: string; files: boolean; format: string }, cmd: Command) => {
      if (opts.format !== 'yaml' && opts.format !== 'json') cmd.error('error: --format must be yaml or json');
      let resolved: unknown;
      try {
        const { config } = loadNamed(opts.config, { ...LOAD_OPTIONS, readFiles: opts.files });
        resolved = plain(withPluginNames(redactConfig(config, PLUGIN_SCHEMAS) as Loose));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(
        opts.format === 'json' ? `${JSON.stringify(resolved, null, 2)}\n` : HEADER + stringify(resolved),
      );
    });
}

type Loose = Record<string, unknown>;

/** Plugin entries back in the config's `- name: {...}` form, globally and on each route. */
function withPluginNames(config: Loose): Loose {
  const named = (list: unknown) => (list as PluginEntry[]).map((e) => ({ [e.name]: e.config }));
  return {
    ...config,
    plugins: named(config.plugins),
    routes: (config.routes as Loose[]).map((r) => ({ ...r, plugins: named(r.plugins) })),
  };
}

/** Plain data for YAML and JSON: sets as lists. */
function plain(value: unknown): unknown {
  if (value instanceof Set) return [...value].map(plain);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}
