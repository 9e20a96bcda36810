// DNS discovery: SRV records (host, port, priority, weight) or A/AAAA records with a configured port, asked of
// the configured servers (default: the system's resolver) with node:dns's Resolver.
import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import type { DiscoverConfig, DiscoverySettings, DnsDiscover } from '../config/discovery-schema.ts';
import type { DiscoveredTarget } from './apply.ts';
import type { DiscoveryProvider, Resolution, Resolve } from './provider.ts';

/** Answers that mean "no such records" (NXDOMAIN, NODATA): an empty set, not a failure. */
const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA']);

/** The subset of node:dns's Resolver the provider uses (a test may hand in its own). */
export interface DnsClient {
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  resolve4(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
}

export function isEmptyAnswer(err: unknown): boolean {
  return EMPTY_CODES.has((err as { code?: string }).code ?? '');
}

function origin(scheme: string, address: string, port: number): string {
  return `${scheme}://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/** A and AAAA of `name`; AAAA only when present. An empty answer to both is an empty list, a failure throws. */
async function addresses(dns: DnsClient, name: string): Promise<{ address: string; ttl: number }[]> {
  if (isIP(name) !== 0) return [{ address: name, ttl: Infinity }];
  const settled = await Promise.allSettled([dns.resolve4(name, { ttl: true }), dns.resolve6(name, { ttl: true })]);
  const out: { address: string; ttl: number }[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') out.push(...s.value);
    else if (!isEmptyAnswer(s.reason)) throw s.reason;
  }
  return out;
}

/** Lowest TTL of the records in seconds → ms; undefined when no record carried one. */
function ttlOf(ttls: number[]): number | undefined {
  const finite = ttls.filter((t) => Number.isFinite(t));
  return finite.length === 0 ? undefined : Math.min(...finite) * 1000;
}

/**
 * One DNS round. SRV: the records of the lowest priority are the primary targets, the others backups; weights are
 * kept (a weight of 0, "rarely", becomes 1: the balancers take 1 at least). Node's resolveSrv gives no TTL, so the
 * TTL is the lowest of the A/AAAA records of the SRV targets, which are asked anyway to get their addresses.
 */
export async function resolveDns(dns: DnsClient, block: DnsDiscover, scheme: string): Promise<Resolution> {
  const targets: DiscoveredTarget[] = [];
  const ttls: number[] = [];
  if (block.a !== undefined) {
    for (const a of await addresses(dns, block.a).catch(emptyOnNoRecords)) {
      targets.push({ url: origin(scheme, a.address, block.port!), weight: 1, backup: false });
      ttls.push(a.ttl);
    }
    return { targets, ttlMs: ttlOf(ttls) };
  }
  const records = await dns.resolveSrv(block.srv!).catch(emptyOnNoRecords);
  if (records.length === 0) return { targets };
  const primary = Math.min(...records.map((r) => r.priority));
  const seen = new Set<string>();
  for (const r of records) {
    for (const a of await addresses(dns, r.name)) {
      const url = origin(scheme, a.address, r.port);
      if (seen.has(url)) continue;
      seen.add(url);
      targets.push({ url, weight: Math.min(1000, Math.max(1, r.weight)), backup: r.priority !== primary });
      ttls.push(a.ttl);
    }
  }
  return { targets, ttlMs: ttlOf(ttls) };
}

function emptyOnNoRecords(err: unknown): never[] {
  if (isEmptyAnswer(err)) return [];
  throw err;
}

export const dnsProvider: DiscoveryProvider = {
  name: 'dns',
  describe: (d: DiscoverConfig) => (d.dns!.srv !== undefined ? `srv ${d.dns!.srv}` : `a ${d.dns!.a}:${d.dns!.port}`),
  minRefreshMs: (settings: DiscoverySettings) => settings.dns.minRefresh,
  create(settings: DiscoverySettings, discover: DiscoverConfig): Resolve {
    // tries: 2 so one lost UDP packet is not a failure; the timeout is per try.
    const resolver = new Resolver({ timeout: Math.ceil(settings.dns.timeout / 2), tries: 2 });
    if (settings.dns.servers !== undefined) resolver.setServers(settings.dns.servers);
    return () => resolveDns(resolver, discover.dns!, discover.scheme);
  },
};
