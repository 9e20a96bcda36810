#!/usr/bin/env node
// The turnpike command: start, validate, schema, demo. The only module that reads argv.
import { Command } from 'commander';
import { ConfigError, formatProblem, loadConfigFile } from '../config/loader.ts';
import { configJsonSchema } from '../config/json-schema.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { startGateway } from '../index.ts';
import { installSignals } from '../runtime/lifecycle.ts';
import { runDemo } from './demo.ts';

const program = new Command('turnpike')
  .description('Reverse proxy, API gateway and load balancer')
  .version('0.1.0');

function reportConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
  } else {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`error: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}\n`);
  }
  process.exit(1);
}

program
  .command('start')
  .description('run the gateway with a config file (reloads on SIGHUP and when the file changes)')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .option('--no-watch', 'do not reload when the config file changes')
  .action(async (opts: { config: string; watch: boolean }) => {
    let gateway;
    try {
      gateway = await startGateway({ configFile: opts.config, watch: opts.watch });
    } catch (err) {
      reportConfigError(err);
    }
    installSignals(gateway.runtime, gateway.reloader, gateway.log, () => process.exit(0));
  });

program
  .command('validate')
  .description('check a config file; exits 0 when valid, 1 with every problem listed otherwise')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .action((opts: { config: string }) => {
    try {
      const { config } = loadConfigFile(opts.config, { plugins: PLUGIN_SCHEMAS });
      process.stdout.write(`${opts.config}: valid (${config.listeners.length} listeners, ${Object.keys(config.upstreams).length} upstreams, ${config.routes.length} routes)\n`);
    } catch (err) {
      reportConfigError(err);
    }
  });

program
  .command('schema')
  .description('print the config JSON Schema (for editors)')
  .action(() => {
    process.stdout.write(JSON.stringify(configJsonSchema(PLUGIN_SCHEMAS), null, 2) + '\n');
  });

program
  .command('demo')
  .description('start three echo services and a gateway in front of them')
  .option('-p, --port <port>', 'gateway port', '8080')
  .action(async (opts: { port: string }) => {
    await runDemo(Number(opts.port));
  });

program.parseAsync(process.argv).catch((err: unknown) => reportConfigError(err));
