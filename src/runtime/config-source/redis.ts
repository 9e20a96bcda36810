// A config kept in one Redis string: redis://[user:password@]HOST:PORT/DB?key=KEY (rediss:// for TLS). Read with
// GET; watched by polling GET every second (keyspace notifications are off by default in Redis, and a poll needs
// no server setting), comparing the text to the last one read.
import { Redis } from 'ioredis';
import { ConfigError } from '../../config/loader.ts';
import { withoutPassword, type ConfigSource } from './source.ts';

const POLL_MS = 1000;

export function redisConfigSource(location: string): ConfigSource {
  const url = new URL(location);
  const name = withoutPassword(url);
  const key = url.searchParams.get('key') ?? '';
  const notFound = (message: string) =>
    new ConfigError([{ code: 'TP_CONFIG_NOT_FOUND', file: name, line: 0, column: 0, path: '', message }]);
  if (key === '') throw notFound('expected redis://HOST:PORT/DB?key=KEY (the key holding the config)');
  const server = new URL(url.href);
  server.search = ''; // ioredis would take query parameters as client options
  let client: Redis | null = null;
  /** The client's last connection error: says more than a failed call ("max retries per request"). */
  let lastError: Error | null = null;
  const redis = () =>
    (client ??= new Redis(server.href, {
      connectTimeout: 2000,
      commandTimeout: 2000,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(100 * times, 2000),
    })
      .on('error', (err: Error) => (lastError = err)) // failures surface on the calls
      .on('ready', () => (lastError = null)));
  const why = (err: Error) => (lastError ?? err).message || (lastError as { code?: string } | null)?.code || 'failed';
  let last: string | undefined;
  const timers = new Set<NodeJS.Timeout>();

  return {
    location,
    name,
    file: undefined,
    async read() {
      let value: string | null;
      try {
        value = await redis().get(key);
      } catch (err) {
        throw notFound(`cannot read config: Redis ${server.host}: ${why(err as Error)}`);
      }
      if (value === null) throw notFound(`cannot read config: Redis has no key ${key}`);
      last = value;
      return value;
    },
    watch(onChange, onError) {
      let failing = false;
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        redis()
          .get(key)
          .then(
            (value) => {
              failing = false;
              if (value !== null && value !== last) {
                last = value;
                onChange();
              }
            },
            (err: Error) => {
              if (!failing) onError(new Error(`Redis ${server.host}: ${why(err)}`));
              failing = true;
            },
          )
          .finally(() => (busy = false));
      }, POLL_MS);
      timers.add(timer);
      return () => {
        clearInterval(timer);
        timers.delete(timer);
      };
    },
    async write(text) {
      await redis().set(key, text);
    },
    close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
      client?.disconnect();
      client = null;
    },
  };
}
