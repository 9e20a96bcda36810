// `turnpike explain --config FILE`: a snapshot compiled from the file as `start` would compile it, with nothing
// listening and nothing probed, asked about one request, then closed. Redis stores are the real ones (a peek reads
// the shared counters and cache); memory stores start empty.
import { randomBytes } from 'node:crypto';
import { CachePurges } from '../cache/purge-fanout.ts';
import { systemClock } from '../clock.ts';
import { loadConfigFile } from '../config/loader.ts';
import { MemoryLimitStore } from '../limits/memory-store.ts';
import { LOAD_OPTIONS } from '../runtime/config-checks.ts';
import { Snapshot } from '../runtime/snapshot.ts';
import { RedisClients } from '../stores/redis-client.ts';
import { TargetRegistry } from '../upstream/pool.ts';
import { explain, type ExplainInput, type Explanation } from './explain.ts';

const FROM_FILE =
  'explained from the config file: targets count as healthy (none was probed), memory rate limits and caches start ' +
  'empty; POST /api/explain on the admin listener asks the running gateway';

/** `warn`: the config's warnings and store failures, once each. */
export async function explainConfigFile(
  configFile: string,
  input: ExplainInput,
  warn: (message: string) => void,
): Promise<Explanation> {
  const { config, file } = loadConfigFile(configFile, LOAD_OPTIONS);
  const said = new Set<string>();
  const once = (key: string, message: string) => {
    if (!said.has(key)) warn(message);
    said.add(key);
  };
  const registry = new TargetRegistry(randomBytes(32).toString('base64url'));
  const redis = new RedisClients((err) => once('redis', `redis store error: ${err.message}`));
  const memory = new MemoryLimitStore({ sweepIntervalMs: 0 });
  try {
    const snapshot = new Snapshot(config, 1, file, registry, {
      warn,
      redis: (settings) => redis.get(settings),
      memory,
      logThrottled: (key, message, fields) => once(key, `${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
      keep: (_key, make) => make(),
      cachePurges: new CachePurges(null),
      clock: systemClock,
    });
    registry.commit(snapshot.upstreams.values());
    return await explain(snapshot, input, { notes: [FROM_FILE] });
  } finally {
    await registry.closeAll(true);
    redis.close();
    memory.close();
  }
}
