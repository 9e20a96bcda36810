// Every discovery provider, by the `discover:` key that selects it. Adding one = a file here + one line below + its
// block in config/discovery-schema.ts (DISCOVERY_PROVIDERS).
import { DISCOVERY_PROVIDERS } from '../config/discovery-schema.ts';
import type { DiscoverConfig } from '../config/discovery-schema.ts';
import { consulProvider } from './consul.ts';
import { dnsProvider } from './dns.ts';
import { kubernetesProvider } from './kubernetes.ts';
import { etcdProvider } from './etcd.ts';
import type { DiscoveryProvider } from './provider.ts';
import { redisProvider } from './redis.ts';

export const PROVIDERS: ReadonlyMap<string, DiscoveryProvider> = new Map(
  [dnsProvider, consulProvider, kubernetesProvider, redisProvider, etcdProvider].map((p) => [p.name, p]),
);

for (const key of Object.keys(DISCOVERY_PROVIDERS)) {
  if (!PROVIDERS.has(key)) throw new Error(`discover key "${key}" has a config shape but no provider in src/discovery`);
}

/** The provider a `discover:` block names (the schema lets exactly one through). */
export function providerOf(discover: DiscoverConfig): DiscoveryProvider {
  const name = Object.keys(DISCOVERY_PROVIDERS).find((k) => discover[k as keyof typeof DISCOVERY_PROVIDERS]);
  const provider = name === undefined ? undefined : PROVIDERS.get(name);
  if (provider === undefined) throw new Error('a discover block names no known provider');
  return provider;
}
