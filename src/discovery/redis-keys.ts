// The Redis registry's key layout, shared by the provider (redis.ts), `turnpike register` and the admin API:
//   key   {<prefix><service>}:<origin>     e.g. {turnpike:services:ledger}:http://10.0.0.5:8080
//   value {"url": "<origin>", "weight": n}  (weight optional, 1 by default)
//   TTL   PX = the registration's TTL, renewed by rewriting the key (every third of the TTL)
//   index {<prefix><service>}               a SET of the origins registered (SADD with each write)
// One key per instance, so an instance that stops renewing disappears on its own when its TTL ends. The index
// spares a SCAN of the whole keyspace each round (stores.redis also holds the caches and rate counters): a round
// is SMEMBERS + MGET; an origin whose key has expired leaves the index then. The braces are a Redis Cluster hash
// tag: a service's index and keys share one slot, so the multi-key commands and the script work there too.
import type { Cluster, Redis } from 'ioredis';
import { RedisScript } from '../stores/redis-script.ts';
import type { DiscoveredTarget } from './apply.ts';

export type RedisLike = Redis | Cluster;

/** The shortest TTL: renewals every third of it must not hammer Redis or lose to one slow round trip. */
export const MIN_TTL_MS = 1000;
/** The longest TTL (a day): a registration is meant to be renewed, and a renewal timer must fit setTimeout. */
export const MAX_TTL_MS = 86_400_000;

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

/** A key's value as a target, in the upstream's scheme; undefined when it is not a registration (left alone). */
export function parseRegistration(value: string | null, scheme: string): DiscoveredTarget | undefined {
  if (value === null) return undefined; // expired: its index entry outlived it
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
  // SET before SADD, in one MULTI: the index never names a key that was not written.
  await client
    .multi()
    .set(instanceKey(prefix, service, url), value, 'PX', Math.max(1, Math.round(ttlMs)))
    .sadd(serviceTag(prefix, service), url)
    .exec()
    .then(execErrors);
}

/** Removes one registration; resolves with whether it was there. */
export async function deregister(client: RedisLike, prefix: string, service: string, url: string): Promise<boolean> {
  const origin = new URL(url).origin;
  const replies = await client
    .multi()
    .del(instanceKey(prefix, service, origin))
    .srem(serviceTag(prefix, service), origin)
    .exec()
    .then(execErrors);
  return replies[0] === 1;
}

/** The replies of a MULTI, or its first error thrown (exec resolves null when the transaction was aborted). */
function execErrors(result: [Error | null, unknown][] | null): unknown[] {
  if (result === null) throw new Error('the Redis transaction was aborted');
  for (const [err] of result) if (err !== null) throw err;
  return result.map(([, v]) => v);
}

/** Removes from the index (KEYS[1]) each origin (ARGV[i]) whose key (KEYS[i+1]) is gone, atomically: a
 *  registration written meanwhile (SET, then SADD) keeps its entry. */
const PRUNE = new RedisScript(`
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('SREM', KEYS[1], ARGV[i - 1]) end
end
return 0`);

/** Every registered instance of `service`, as targets in `scheme`, sorted by URL (one answer, a stable order). */
export async function listRegistrations(
  client: RedisLike,
  prefix: string,
  service: string,
  scheme: string,
): Promise<DiscoveredTarget[]> {
  const index = serviceTag(prefix, service);
  const origins = await client.smembers(index);
  if (origins.length === 0) return [];
  const keys = origins.map((o) => `${index}:${o}`);
  const values = await client.mget(...keys);
  const byUrl = new Map<string, DiscoveredTarget>();
  const gone: number[] = [];
  values.forEach((v, i) => {
    if (v === null) gone.push(i);
    const t = parseRegistration(v, scheme);
    if (t !== undefined) byUrl.set(t.url, t);
  });
  if (gone.length > 0)
    // Housekeeping: a failure here leaves the entry for the next round, and does not fail this one.
    await PRUNE.run(
      client as Redis,
      [index, ...gone.map((i) => keys[i]!)],
      gone.map((i) => origins[i]!),
    ).catch(() => undefined);
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
