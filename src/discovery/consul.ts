// Consul discovery: the health-passing instances of a service, from the HTTP API's health endpoint with blocking
// queries (GET /v1/health/service/<service>?passing=true&tag=..&index=..&wait=..). The first call answers at once;
// each later one waits in Consul until the index moves, and answers only when the target set changed.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { Agent, request } from 'undici';
import type { ConsulDiscover, DiscoverConfig, DiscoverySettings } from '../config/discovery-schema.ts';
import type { DiscoveredTarget } from './apply.ts';
import type { DiscoveryProvider, ProviderEnv, Resolve } from './provider.ts';

/** The part of one entry of /v1/health/service that matters here. */
export interface ConsulServiceEntry {
  readonly Node?: { readonly Address?: string };
  readonly Service?: {
    readonly Address?: string;
    readonly Port?: number;
    readonly Tags?: readonly string[] | null;
    readonly Weights?: { readonly Passing?: number } | null;
  };
  readonly Checks?: readonly { readonly Status?: string }[] | null;
}

export function origin(scheme: string, host: string, port: number): string {
  return `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/**
 * The targets of a health answer: instances whose checks all pass and that carry every wanted tag (Consul filters
 * already; checked again so a proxy or an old agent that ignores a parameter cannot widen the set). The address is
 * the service's, else its node's; the weight is Weights.Passing (1 by default, 1 to 1000 as the balancers take).
 */
export function consulTargets(entries: unknown, block: ConsulDiscover, scheme: string): DiscoveredTarget[] {
  if (!Array.isArray(entries)) throw new Error('Consul answered something other than a list of service entries');
  const targets = new Map<string, DiscoveredTarget>();
  for (const entry of entries as ConsulServiceEntry[]) {
    const service = entry.Service;
    if (service === undefined || typeof service.Port !== 'number' || service.Port < 1) continue;
    if ((entry.Checks ?? []).some((c) => c.Status !== 'passing')) continue;
    const tags = service.Tags ?? [];
    if (!(block.tags ?? []).every((t) => tags.includes(t))) continue;
    const host = service.Address !== undefined && service.Address !== '' ? service.Address : entry.Node?.Address;
    if (host === undefined || host === '') continue;
    const url = origin(scheme, host, service.Port);
    const weight = Math.min(1000, Math.max(1, Math.floor(service.Weights?.Passing ?? 1)));
    if (!targets.has(url)) targets.set(url, { url, weight, backup: false });
  }
  return [...targets.values()];
}

/**
 * The index of the next blocking query from the X-Consul-Index of an answer, as Consul's docs ask: reset to 0 when
 * it went backwards (the next query answers at once), never below 1 otherwise (an index of 0 would not block).
 */
export function nextIndex(previous: number, header: string | string[] | undefined): number {
  const value = Number(Array.isArray(header) ? header[0] : header);
  // Without an index no query could block: a loop that asks without end; a failure instead.
  if (header === undefined || !Number.isFinite(value)) throw new Error('Consul answered without an X-Consul-Index');
  if (value < previous) return 0;
  return Math.max(1, Math.floor(value));
}

/** The request path of one round. */
export function consulPath(block: ConsulDiscover, index: number, waitMs: number): string {
  const query = new URLSearchParams({ passing: 'true' });
  for (const tag of block.tags ?? []) query.append('tag', tag);
  if (block.dc !== undefined) query.set('dc', block.dc);
  if (index > 0) {
    query.set('index', String(index));
    query.set('wait', `${Math.ceil(waitMs / 1000)}s`);
  }
  return `/v1/health/service/${encodeURIComponent(block.service)}?${query}`;
}

const sameSet = (a: readonly DiscoveredTarget[], b: readonly DiscoveredTarget[] | undefined): boolean =>
  b !== undefined && JSON.stringify(a) === JSON.stringify(b);

function createConsul(settings: DiscoverySettings, discover: DiscoverConfig, env: ProviderEnv): Resolve {
  const s = settings.consul;
  const block = discover.consul!;
  const base = new URL(s.address);
  let agent: Agent | undefined;
  /** The index of the last answer; 0 asks without one (answers at once): the first call, after a failure. */
  let index = 0;
  let last: DiscoveredTarget[] | undefined;
  return async (signal) => {
    if (agent === undefined) {
      const ca = s.caFile !== undefined ? readFileSync(resolvePath(env.configDir ?? '.', s.caFile)) : undefined;
      agent = new Agent(ca !== undefined ? { connect: { ca } } : {});
      const opened = agent;
      signal.addEventListener('abort', () => void opened.close(), { once: true });
    }
    const answerAtOnce = index === 0 || last === undefined;
    try {
      for (;;) {
        const path = consulPath(block, answerAtOnce ? 0 : index, s.wait);
        // Consul adds up to wait/16 of jitter to a blocking query: the timeout leaves room for it.
        const timeout = AbortSignal.timeout(s.wait + s.wait / 16 + 10_000);
        const res = await request(new URL(path, base), {
          dispatcher: agent,
          signal: AbortSignal.any([signal, timeout]),
          headers: s.token !== undefined && s.token !== '' ? { 'x-consul-token': s.token } : {},
          headersTimeout: s.wait + s.wait / 16 + 10_000,
        });
        const body = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`Consul answered ${res.statusCode}: ${body.slice(0, 200).trim()}`);
        index = nextIndex(index, res.headers['x-consul-index']);
        let entries: unknown;
        try {
          entries = JSON.parse(body);
        } catch {
          throw new Error(`Consul answered something other than JSON: ${body.slice(0, 200).trim()}`);
        }
        const targets = consulTargets(entries, block, discover.scheme);
        if (answerAtOnce || !sameSet(targets, last)) {
          last = targets;
          return { targets };
        }
      }
    } catch (err) {
      index = 0; // the next call answers at once, so a registry that is back is seen as back at once
      throw err;
    }
  };
}

export const consulProvider: DiscoveryProvider = {
  name: 'consul',
  describe: (d: DiscoverConfig) =>
    [d.consul!.service, ...(d.consul!.tags?.length ? [`tags ${d.consul!.tags.join(',')}`] : [])]
      .concat(d.consul!.dc !== undefined ? [`dc ${d.consul!.dc}`] : [])
      .join(' '),
  // A watching source: each round waits in Consul for a change, so the loop asks again at once.
  minRefreshMs: () => 0,
  create: createConsul,
};
