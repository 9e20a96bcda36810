// etcd discovery: one key per instance under <prefix><service>/, each holding {"url": ..., "weight"?, "backup"?}.
// A watching source: the first round lists the keys (and the revision), each later round watches from the next
// revision and answers with the set once a change arrives. A compacted revision, or any failure, lists again.
import type { DiscoverConfig, DiscoverySettings } from '../config/discovery-schema.ts';
import { EtcdClient, EtcdCompactedError, type EtcdKv } from '../stores/etcd-client.ts';
import type { DiscoveredTarget } from './apply.ts';
import type { DiscoveryProvider, Resolve } from './provider.ts';

/**
 * The target a key's value names, or undefined when it names none (not JSON, no usable url): such a key is
 * skipped, not a failure, so one bad registration cannot freeze the set. A url without a scheme
 * ("10.0.0.5:8080") takes the discover block's `scheme`.
 */
export function targetOf(value: string, scheme: string): DiscoveredTarget | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { url, weight, backup } = parsed as { url?: unknown; weight?: unknown; backup?: unknown };
  if (typeof url !== 'string') return undefined;
  let origin: string;
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `${scheme}://${url}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    origin = u.origin;
  } catch {
    return undefined;
  }
  const w = typeof weight === 'number' && Number.isFinite(weight) ? Math.min(1000, Math.max(1, Math.round(weight))) : 1;
  return { url: origin, weight: w, backup: backup === true };
}

/** The set the keys describe, in key order; two keys naming one origin count once. */
export function targetsOf(kvs: Iterable<EtcdKv>, scheme: string): DiscoveredTarget[] {
  const byOrigin = new Map<string, DiscoveredTarget>();
  for (const kv of [...kvs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const t = targetOf(kv.value, scheme);
    if (t !== undefined && !byOrigin.has(t.url)) byOrigin.set(t.url, t);
  }
  return [...byOrigin.values()];
}

/** The watching resolve of one service over a client (the tests hand in theirs). */
export function watchService(client: EtcdClient, prefix: string, scheme: string): Resolve {
  const keys = new Map<string, EtcdKv>();
  let revision: number | undefined; // undefined: list first
  return async (signal) => {
    if (revision === undefined) {
      const listed = await client.range(prefix, true, signal);
      keys.clear();
      for (const kv of listed.kvs) keys.set(kv.key, kv);
      revision = listed.revision;
      return { targets: targetsOf(keys.values(), scheme) };
    }
    // The loop ends a round at the end of an empty grace itself (loop.ts), and takes this wait over.
    try {
      const events = await client.nextEvents(prefix, true, revision + 1, signal);
      for (const e of events) {
        if (e.type === 'DELETE') keys.delete(e.kv.key);
        else keys.set(e.kv.key, e.kv);
        revision = Math.max(revision, e.kv.modRevision);
      }
    } catch (err) {
      // Compacted: the missed changes are gone, list again now. Anything else: list again after the retry wait.
      revision = undefined;
      if (!(err instanceof EtcdCompactedError)) throw err;
      const listed = await client.range(prefix, true, signal);
      keys.clear();
      for (const kv of listed.kvs) keys.set(kv.key, kv);
      revision = listed.revision;
    }
    return { targets: targetsOf(keys.values(), scheme) };
  };
}

export function servicePrefix(settings: DiscoverySettings, discover: DiscoverConfig): string {
  return `${settings.etcd.prefix}${discover.etcd!.service}/`;
}

export const etcdProvider: DiscoveryProvider = {
  name: 'etcd',
  describe: (d: DiscoverConfig) => `service ${d.etcd!.service}`,
  // A watch: each round returns when something changed, so the next one starts at once.
  minRefreshMs: () => 0,
  retryMs: () => 1000,
  create(settings: DiscoverySettings, discover: DiscoverConfig): Resolve {
    const client = new EtcdClient({ endpoints: settings.etcd.endpoints, timeoutMs: settings.etcd.timeout });
    return watchService(client, servicePrefix(settings, discover), discover.scheme);
  },
};
