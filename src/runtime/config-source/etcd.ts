// A config kept in one etcd key: etcd://HOST:PORT/KEY (the key is the URL's path, /turnpike/config). Read with a
// range call, watched with an etcd watch on the key (from the revision read); a lost etcd is reported once per
// failure streak and watched again a second later, comparing the text to the last one read.
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../config/loader.ts';
import { EtcdClient } from '../../stores/etcd-client.ts';
import { withoutPassword, type ConfigSource } from './source.ts';

const RETRY_MS = 1000;

export function etcdConfigSource(location: string): ConfigSource {
  const url = new URL(location);
  const name = withoutPassword(url);
  const key = decodeURIComponent(url.pathname);
  const notFound = (message: string) =>
    new ConfigError([{ code: 'TP_CONFIG_NOT_FOUND', file: name, line: 0, column: 0, path: '', message }]);
  if (url.host === '' || key === '' || key === '/')
    throw notFound('expected etcd://HOST:PORT/KEY (the key is the path)');
  const client = new EtcdClient({ endpoints: [`http://${url.host}`], timeoutMs: 5000 });
  /** The text last read or seen: a watch calls onChange only when it differs. */
  let last: string | undefined;
  const stops = new Set<AbortController>();

  return {
    location,
    name,
    file: undefined,
    async read() {
      let value: string | undefined;
      try {
        value = (await client.get(key)).value;
      } catch (err) {
        throw notFound(`cannot read config: ${(err as Error).message}`);
      }
      if (value === undefined) throw notFound(`cannot read config: etcd has no key ${key}`);
      last = value;
      return value;
    },
    watch(onChange, onError) {
      const stop = new AbortController();
      stops.add(stop);
      void (async () => {
        let failing = false;
        while (!stop.signal.aborted) {
          try {
            const { revision, value } = await client.get(key, stop.signal);
            failing = false;
            if (value !== undefined && value !== last) {
              last = value;
              onChange();
            }
            await client.nextEvents(key, false, revision + 1, stop.signal);
          } catch (err) {
            if (stop.signal.aborted) return;
            if (!failing) onError(err as Error);
            failing = true;
            await sleep(RETRY_MS, undefined, { signal: stop.signal }).catch(() => undefined);
          }
        }
      })();
      return () => {
        stop.abort();
        stops.delete(stop);
      };
    },
    async write(text) {
      await client.put(key, text);
    },
    close() {
      for (const s of stops) s.abort();
      stops.clear();
    },
  };
}
