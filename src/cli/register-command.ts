// `turnpike register --config FILE --service NAME --url URL --ttl 10s [--weight N]`: registers one instance of a
// service in the Redis the config names (stores.redis, under discovery.redis.prefix) for the gateways whose
// upstreams say `discover: { redis: { service: NAME } }`. It renews the key every third of the TTL until SIGINT or
// SIGTERM, then deletes it (a clean leave) and exits 0; killed outright, the key expires with its TTL.
// A Redis that cannot be reached is retried (a warn line per failure streak): a registration outlives a Redis blip.
import { dirname, resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { redisServiceName } from '../config/discovery-schema.ts';
import { ConfigError } from '../config/loader.ts';
import type { ErrorCode } from '../errors.ts';
import {
  deregister,
  MAX_TTL_MS,
  MIN_TTL_MS,
  readyWithin,
  register,
  registrationUrlProblem,
} from '../discovery/redis-keys.ts';
import { createAppLog } from '../observability/app-log.ts';
import { LOAD_OPTIONS } from '../runtime/config-checks.ts';
import { RedisClients } from '../stores/redis-client.ts';
import { parseDuration } from '../units.ts';
import { reportConfigError } from './report-error.ts';
import { loadNamed } from './validate-command.ts';

interface RegisterOptions {
  readonly config: string;
  readonly service: string;
  readonly url: string;
  readonly ttl: number;
  readonly weight?: number;
}

/** The wait before another try after a failed write (a renewal period may be longer). */
const RETRY_MS = 1000;

function parseTtl(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < MIN_TTL_MS)
    throw new InvalidArgumentError('expected a duration of 1s or more, e.g. 10s');
  return ms;
}

function parseWeight(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000)
    throw new InvalidArgumentError('expected a whole number from 1 to 1000');
  return n;
}

function parseService(value: string): string {
  if (!redisServiceName.safeParse(value).success)
    throw new InvalidArgumentError('expected a service name such as ledger (letters, digits, . _ -)');
  return value;
}

function parseUrl(value: string): string {
  const problem = registrationUrlProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return new URL(value).origin;
}

export function registerRegister(program: Command): void {
  program
    .command('register')
    .description(
      'register a service instance in the Redis of a config (stores.redis) for discover: { redis: ... }; ' +
        'renewed every third of the TTL until SIGINT/SIGTERM, then removed',
    )
    .requiredOption('-c, --config <file>', 'the config file that names the Redis (stores.redis, discovery.redis)')
    .requiredOption(
      '--service <name>',
      'the service, as upstreams name it in discover: { redis: { service } }',
      parseService,
    )
    .requiredOption('--url <origin>', 'where this instance serves, e.g. http://10.0.0.5:8080', parseUrl)
    .requiredOption('--ttl <duration>', 'how long the registration lives unless renewed, e.g. 10s', parseTtl)
    .option('--weight <n>', 'the balancing weight of this instance (1 to 1000)', parseWeight)
    .action((opts: RegisterOptions) => runRegister(opts));
}

async function runRegister(opts: RegisterOptions): Promise<void> {
  let loaded;
  try {
    // The registering host need not hold the gateway's certificates or log folders: files are not opened.
    loaded = loadNamed(opts.config, { ...LOAD_OPTIONS, readFiles: false });
  } catch (err) {
    if (err instanceof ConfigError) reportConfigError(err);
    throw err;
  }
  const { config } = loaded;
  const settings = config.stores.redis;
  if (settings === undefined) {
    process.stderr.write(
      `error: ${opts.config} has no stores.redis: register writes to the Redis the gateways read (add stores: { redis: { url: redis://HOST:PORT } })\n`,
    );
    process.exit(2);
  }
  const prefix = config.discovery.redis.prefix;
  const log = createAppLog().child({ service: opts.service, url: opts.url });
  let failing = false;
  // Connection errors show in the warn line of the write that fails; here they are only debug noise.
  const clients = new RedisClients((err) => log.debug({ error: err.message }, 'redis connection error'));
  // TLS files of stores.redis are relative to the config file, as for the gateway.
  const client = clients.get({ ...settings, configDir: dirname(resolvePath(opts.config)) });
  const reg = { url: opts.url, ...(opts.weight !== undefined ? { weight: opts.weight } : {}) };
  const every = Math.floor(opts.ttl / 3);
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let first = true;
  /** The write in flight: a leave waits for it, so a late renewal cannot bring the key back after the DEL. */
  let writing: Promise<void> = Promise.resolve();

  const renew = async (): Promise<void> => {
    try {
      // Without an offline queue a write fails at once while the client (re)connects: wait for it a little.
      await readyWithin(client, settings.connectTimeout);
      await register(client, prefix, opts.service, reg, opts.ttl);
      if (first || failing) log.info({ ttlMs: opts.ttl, renewMs: every }, first ? 'registered' : 'registered again');
      first = false;
      failing = false;
    } catch (err) {
      if (!failing)
        log.warn(
          { code: 'TP_STORE_UNAVAILABLE' satisfies ErrorCode, error: (err as Error).message },
          'registration failed; retrying (the key expires with its TTL unless renewed)',
        );
      failing = true;
    }
    if (!stopping) timer = setTimeout(() => void (writing = renew()), failing ? Math.min(RETRY_MS, every) : every);
  };

  const leave = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    await writing;
    try {
      await readyWithin(client, settings.connectTimeout);
      await deregister(client, prefix, opts.service, opts.url);
      log.info({ signal }, 'deregistered');
    } catch (err) {
      log.warn({ signal, error: (err as Error).message }, 'could not deregister; the key expires with its TTL');
    }
    clients.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void leave('SIGINT'));
  process.on('SIGTERM', () => void leave('SIGTERM'));
  writing = renew();
  await writing;
}
