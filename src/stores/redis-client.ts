// One ioredis client per process for `stores.redis`, shared by every plugin and kept across reloads while its
// settings are unchanged. Commands never wait for a connection: without an offline queue and with a command
// timeout, an unreachable Redis fails a call within `commandTimeout`, and the plugin's onStoreError decides.
// Where Redis is: one server (url), the master a set of Sentinels names (sentinels + name: the client follows a
// failover), or a Cluster (cluster: the client routes each key to its slot's master).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseHostPort } from '../config/redis-store-schema.ts';
import { TurnpikeError } from '../errors.ts';

/** A client of either kind: the stores use only what both have (commands, status, events). */
export type RedisClient = Redis | Cluster;

export interface RedisTlsFiles {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly serverName?: string | undefined;
  readonly insecureSkipVerify?: boolean | undefined;
}

export interface RedisSettings {
  readonly url?: string | undefined;
  readonly sentinels?: readonly string[] | undefined;
  /** The master name the sentinels watch. */
  readonly name?: string | undefined;
  readonly cluster?: readonly string[] | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly sentinelUsername?: string | undefined;
  readonly sentinelPassword?: string | undefined;
  readonly tls?: boolean | RedisTlsFiles | undefined;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  /** Where the tls files are relative to (the config file's folder; default: the working directory). */
  readonly configDir?: string | undefined;
}

/** Settings that name one server by URL: the client is a plain Redis. */
export type RedisUrlSettings = RedisSettings & {
  readonly url: string;
  readonly sentinels?: undefined;
  readonly cluster?: undefined;
};

// Keep trying to come back, at most every 2 s: the plugins answer by onStoreError meanwhile.
const retry = (times: number) => Math.min(100 * times, 2000);
// Behind sentinels, at most every 500 ms: each try asks the next sentinel, and one that has not yet heard of a
// promotion names the dead master again; trying often reaches one that has (all have within ~2 s, their hellos).
const sentinelRetry = (times: number) => Math.min(100 * times, 500);

export class RedisClients {
  private client: RedisClient | null = null;
  private key = '';
  private readonly onError: (err: Error) => void;

  constructor(onError: (err: Error) => void) {
    this.onError = onError;
  }

  /** The client for these settings (created on first use); different settings replace the old one. */
  get(settings: RedisUrlSettings): Redis;
  get(settings: RedisSettings): RedisClient;
  get(settings: RedisSettings): RedisClient {
    const key = JSON.stringify(settings);
    if (this.client !== null && this.key === key) return this.client;
    const old = this.client;
    this.client = createRedisClient(settings);
    this.client.on('error', this.onError);
    this.key = key;
    if (old !== null) setTimeout(() => old.disconnect(), 5000).unref(); // let calls in flight finish
    return this.client;
  }

  close(): void {
    this.client?.disconnect();
    this.client = null;
  }
}

export function createRedisClient(settings: RedisSettings): RedisClient {
  const tls = tlsOptions(settings);
  const common: RedisOptions = {
    connectTimeout: settings.connectTimeout,
    commandTimeout: settings.commandTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: retry,
    lazyConnect: false,
    // Commands issued in the same tick go out in one write: under load, one syscall for many requests.
    enableAutoPipelining: true,
    ...(settings.username !== undefined ? { username: settings.username } : {}),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  if (settings.cluster !== undefined) {
    return new Cluster(settings.cluster.map(node), {
      redisOptions: common,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
    });
  }
  if (settings.sentinels !== undefined) {
    return new Redis({
      ...common,
      retryStrategy: sentinelRetry,
      sentinels: settings.sentinels.map(node),
      name: settings.name!,
      ...(settings.sentinelUsername !== undefined ? { sentinelUsername: settings.sentinelUsername } : {}),
      ...(settings.sentinelPassword !== undefined ? { sentinelPassword: settings.sentinelPassword } : {}),
      ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      sentinelCommandTimeout: settings.connectTimeout,
      // Ask the sentinels again soon while none answers: the master comes back as soon as one does.
      sentinelRetryStrategy: sentinelRetry,
      // Not ioredis's failoverDetector (off by default there since redis/ioredis#1362): its +switch-master
      // subscription outlives the connection to a dead master, and the switch, arriving while the client is
      // reconnecting, ends the client for good (status `end`; seen with ioredis 6.0.0 in
      // test/e2e/redis-sentinel-failover.test.ts). The 500 ms retries find the new master.
      failoverDetector: false,
      // A master demoted under us answers writes with READONLY: reconnect, so the sentinels name the new one.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
  }
  return new Redis(settings.url!, common);
}

function node(hostPort: string): { host: string; port: number } {
  const parsed = parseHostPort(hostPort);
  if (parsed === undefined) throw new TurnpikeError('TP_CONFIG_INVALID', `stores.redis: not host:port: ${hostPort}`);
  return parsed;
}

function tlsOptions(settings: RedisSettings): ConnectionOptions | undefined {
  const tls = settings.tls;
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  const dir = settings.configDir ?? process.cwd();
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(resolve(dir, file));
    } catch (err) {
      throw new TurnpikeError(
        'TP_TLS_CONFIG',
        `stores.redis.tls.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  return {
    ...(tls.ca !== undefined ? { ca: read('ca', tls.ca) } : {}),
    ...(tls.cert !== undefined && tls.key !== undefined
      ? { cert: read('cert', tls.cert), key: read('key', tls.key) }
      : {}),
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    rejectUnauthorized: tls.insecureSkipVerify !== true,
  };
}

/** The per-command timeout the client was made with (0: none). */
export function commandTimeoutOf(client: RedisClient): number {
  return (client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout) ?? 0;
}

/** Whether the client queues commands while it is not connected (the shared one does not). */
export function offlineQueueOf(client: RedisClient): boolean {
  return client.options.enableOfflineQueue !== false;
}
