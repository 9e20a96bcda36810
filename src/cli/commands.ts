// The turnpike command: start, validate (validate-command.ts), push (push-command.ts), config (config-command.ts), schema, demo. The only module that reads argv.
import { hashPassword } from '../auth/password.ts';
import { Command, InvalidArgumentError } from 'commander';
import { configJsonSchema } from '../config/json-schema.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { loadFromSource, openConfigSource } from '../runtime/config-source/source.ts';
import { installSignals } from '../runtime/lifecycle.ts';
import { resolveWorkerCount } from '../runtime/worker-count.ts';
import { registerTestCommand } from './test-command.ts';
import { VERSION } from '../version.ts';
import { reportConfigError } from './report-error.ts';
import { registerConfig } from './config-command.ts';
import { registerValidate } from './validate-command.ts';
import { registerPush } from './push-command.ts';
import { registerExplain } from './explain.ts';
import { registerRegister } from './register-command.ts';

const program = new Command('turnpike').description('Reverse proxy, API gateway and load balancer').version(VERSION);

// SIGUSR1 is held too: without a handler Node would open its inspector on it.
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1'] as const;

/**
 * Holds signals that arrive while the gateway starts: listeners (and their "listening" log line) are up before
 * installSignals runs, and a signal without a handler would kill the process (SIGHUP) or skip the drain.
 * The returned function removes the hold and delivers what arrived to the real handlers.
 */
function holdSignals(): () => void {
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals) => void held.push(signal);
  for (const s of SIGNALS) process.on(s, hold);
  return () => {
    for (const s of SIGNALS) process.off(s, hold);
    for (const s of held) process.emit(s, s);
  };
}

function parseWorkers(value: string): 'auto' | number {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new InvalidArgumentError('expected auto or a number from 1 to 256');
  return n;
}

program
  .command('start')
  .description('run the gateway with a config file or store key (reloads on SIGHUP and when the config changes)')
  .requiredOption(
    '-c, --config <file|url>',
    'config file (YAML or JSON), or etcd://HOST:PORT/KEY, or redis://HOST:PORT/DB?key=KEY',
  )
  .option('-w, --workers <n|auto>', "worker processes (overrides the config's workers)", parseWorkers)
  .option('--no-watch', 'do not reload when the config file changes')
  .option('--handover', 'share ports a running Turnpike holds (binary upgrade: then SIGTERM the old one)')
  .action(async (opts: StartOpts) => {
    const release = holdSignals();
    let workers: number;
    try {
      const source = openConfigSource(opts.config);
      try {
        const { config } = loadFromSource(source, await source.read());
        workers = resolveWorkerCount(opts.workers ?? config.workers);
      } finally {
        source.close();
      }
    } catch (err) {
      reportConfigError(err);
    }
    if (workers > 1) {
      await startPrimary(opts, release);
      return;
    }
    const { startGateway } = await import('../runtime/gateway.ts');
    let gateway;
    try {
      gateway = await startGateway({ configFile: opts.config, watch: opts.watch, handover: opts.handover });
    } catch (err) {
      reportConfigError(err);
    }
    installSignals(gateway.runtime, gateway.reloader, gateway.log, () => process.exit(0));
    release();
  });

type StartOpts = { config: string; watch: boolean; workers?: 'auto' | number; handover?: boolean };

/** Several workers: this process becomes the cluster primary (it loads no proxy code itself). */
async function startPrimary(opts: StartOpts, release: () => void): Promise<void> {
  const { Primary } = await import('../runtime/primary.ts');
  const { createAppLog } = await import('../observability/app-log.ts');
  const log = createAppLog();
  const primary = new Primary({
    configFile: opts.config,
    workers: opts.workers,
    watch: opts.watch,
    log,
    handover: opts.handover,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining all workers');
    void primary.stop().then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void primary.reload('SIGHUP'));
  process.on('SIGUSR1', () => primary.reopenLogs());
  try {
    await primary.start();
  } catch (err) {
    await primary.stop();
    reportConfigError(err);
  }
  release();
}

registerValidate(program);
registerPush(program);
registerConfig(program);

registerTestCommand(program);
registerExplain(program);
registerRegister(program);

program
  .command('schema')
  .description('print the config JSON Schema (for editors)')
  .action(() => {
    process.stdout.write(JSON.stringify(configJsonSchema(PLUGIN_SCHEMAS), null, 2) + '\n');
  });

program
  .command('hash-password')
  .description('read a password from standard input and print a hash for consumers[].credentials.basic.passwordHash')
  .action(async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    // One trailing newline (from echo or a terminal) is not part of the password.
    const password = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (password === '') {
      process.stderr.write(
        'hash-password: no password on standard input (try: echo -n SECRET | turnpike hash-password)\n',
      );
      process.exitCode = 2;
      return;
    }
    process.stdout.write(`${await hashPassword(password)}\n`);
  });

program
  .command('demo')
  .description('start three echo services and a gateway in front of them')
  .option('-p, --port <port>', 'gateway port (0 picks a free one)', parsePort, 8080)
  .option(
    '--admin-port <port>',
    'admin listener port: the dashboard, /metrics, the admin API (0 picks a free one)',
    parsePort,
    9901,
  )
  .action(async (opts: { port: number; adminPort: number }) => {
    const release = holdSignals();
    await (await import('./demo.ts')).runDemo(opts.port, opts.adminPort);
    release();
  });

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return port;
}

program.parseAsync(process.argv).catch((err: unknown) => reportConfigError(err));
