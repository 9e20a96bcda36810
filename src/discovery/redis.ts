// Redis discovery: the instances registered under `discovery.redis.prefix` for the upstream's service, in the
// instance's `stores.redis` (key layout: redis-keys.ts). Polled every `discovery.redis.refresh` (1 s by default):
// the service's index (SMEMBERS) and its keys (one MGET), two commands whatever the size of the keyspace; a new
// registration is seen within a refresh, and one whose TTL ended is gone within a refresh too (Redis never returns
// an expired key). Keyspace notifications would need `notify-keyspace-events` set on the server, which a gateway
// cannot assume, and a poll would still be needed after each reconnect.
import type { DiscoverConfig, DiscoverySettings } from '../config/discovery-schema.ts';
import type { DiscoveryProvider, ProviderEnv, Resolve } from './provider.ts';
import { listRegistrations } from './redis-keys.ts';

export const redisProvider: DiscoveryProvider = {
  name: 'redis',
  describe: (d: DiscoverConfig) => `service ${d.redis!.service}`,
  minRefreshMs: (settings: DiscoverySettings) => settings.redis.refresh,
  create(settings: DiscoverySettings, discover: DiscoverConfig, env: ProviderEnv): Resolve {
    const { service } = discover.redis!;
    return async () => {
      // Asked each round: a reload that changes stores.redis replaces the client.
      const client = env.redis();
      // The config check refuses discover.redis without stores.redis; this is the runtime's guard.
      if (client === undefined) throw new Error('discover.redis needs the top-level stores.redis');
      return { targets: await listRegistrations(client, settings.redis.prefix, service, discover.scheme) };
    };
  },
};
