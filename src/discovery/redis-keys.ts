// The Redis registry's key layout, shared by the provider (redis.ts), `turnpike register` and the admin API:
//   key   {<prefix><service>}:<origin>     e.g. {turnpike:services:ledger}:http://10.0.0.5:8080
//   value {"url": "<origin>", "weight": n}  (weight optional, 1 by default)
//   TTL   PX = the registration's TTL, renewed by rewriting the key (every third of the TTL)
// One key per instance, so an instance that stops renewing disappears on its own when its TTL ends. The braces are
// a Redis Cluster hash tag: every instance of one service sits in one slot, on one node, so one SCAN there finds
// them all and one MGET reads them.
import type { Cluster, Redis } from 'ioredis';
import type { DiscoveredTarget } from './apply.ts';

export type RedisLike = Redis | Cluster;

/** One registered instance: the origin it serves on and its weight. */
export interface Registration {
  readonly url: string;
  readonly weight?: number;
}

/** The hash-tagged part every key of `service` starts with. */
export function serviceTag(prefix: string, service: string): string {
  return `{${prefix}${service}}`;
}

/** Why `url` cannot be registered (an http(s) origin: no path, query or credentials), or undefined. */
export function registrationUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return `"${url}" is not a URL: expected an origin such as http://10.0.0.5:8080`;
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `"${url}": expected an http:// or https:// origin`;
  if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '' || u.username || u.password)
    return `"${url}": expected an origin (scheme, host and port) only, such as http://10.0.0.5:8080`;
  return undefined;
}

export function instanceKey(prefix: string, service: string, url: string): string {
  return `${serviceTag(prefix, service)}:${new URL(url).origin}`;
}

/** A SCAN MATCH pattern for every instance of `service`: glob characters of the tag escaped. */
export function servicePattern(prefix: string, service: string): string {
  return `${serviceTag(prefix, service).replace(/[*?[\]\\]/g, '\\$&')}:*`;
}

/** A key's value as a target, in the upstream's scheme; undefined when it is not a registration (left alone). */
export function parseRegistration(value: string | null, scheme: string): DiscoveredTarget | undefined {
  if (value === null) return undefined; // expired between the SCAN and the read
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const { url, weight } = v as { url?: unknown; weight?: unknown };
  if (typeof url !== 'string' || registrationUrlProblem(url) !== undefined) return undefined;
  const w = typeof weight === 'number' && Number.isInteger(weight) ? Math.min(1000, Math.max(1, weight)) : 1;
  // The upstream's discover.scheme says how it talks to its targets; the registration says where they listen.
  return { url: `${scheme}://${new URL(url).host}`, weight: w, backup: false };
}

/** Writes (or renews) one registration with its TTL. */
export async function register(
  client: RedisLike,
  prefix: string,
  service: string,
  reg: Registration,
  ttlMs: number,
): Promise<void> {
  const url = new URL(reg.url).origin;
  const value = JSON.stringify({ url, ...(reg.weight !== undefined ? { weight: reg.weight } : {}) });
  await client.set(instanceKey(prefix, service, url), value, 'PX', Math.max(1, Math.round(ttlMs)));
}

/** Removes one registration; resolves with whether it was there. */
export async function deregister(client: RedisLike, prefix: string, service: string, url: string): Promise<boolean> {
  return (await client.del(instanceKey(prefix, service, url))) > 0;
}

/** The nodes a SCAN must cover: the masters of a Cluster (the tag's slot is on one of them), else the client. */
function scanNodes(client: RedisLike): Redis[] {
  return client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
}

/** Every registered instance of `service`, as targets in `scheme`, sorted by URL (one answer, a stable order). */
export async function listRegistrations(
  client: RedisLike,
  prefix: string,
  service: string,
  scheme: string,
): Promise<DiscoveredTarget[]> {
  const pattern = servicePattern(prefix, service);
  const keys = new Set<string>();
  for (const node of scanNodes(client)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      for (const k of found) keys.add(k);
      cursor = next;
    } while (cursor !== '0');
  }
  if (keys.size === 0) return [];
  // One slot (the hash tag), so one MGET even on a Cluster.
  const values = await client.mget(...keys);
  const byUrl = new Map<string, DiscoveredTarget>();
  for (const v of values) {
    const t = parseRegistration(v, scheme);
    if (t !== undefined) byUrl.set(t.url, t);
  }
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/** Resolves once `client` is ready (at once when it is), rejects after `ms`: without an offline queue a command
 *  sent while it (re)connects fails at once. */
export function readyWithin(client: RedisLike, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not reachable within ${ms} ms`));
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
