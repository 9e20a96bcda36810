// The config a `turnpike test` run serves: the user's, with everything that would reach outside the machine or
// outlive the run replaced. Routing, plugins, consumers and upstream policies stay exactly as configured.
import type { Config, PluginEntry } from '../config/schema.ts';
import { upstreamKind } from '../config/upstream-schema.ts';
import { discoveredStub, type UpstreamStubs } from './stubs.ts';

export interface TestRunOptions {
  readonly stubs: UpstreamStubs;
  /** Where `jwt` plugins with a `jwksUri` fetch their keys during the run (the cases' keys), or null to keep theirs. */
  readonly jwksUrl: string | null;
}

/**
 * - http and https listeners on 127.0.0.1 port 0 (one socket, no PROXY header); tcp and udp listeners dropped;
 * - each http(s) target replaced by its stub (plain HTTP: the upstream's `tls` goes), no active health checks
 *   (a probe would reach a stub between cases);
 * - `store: redis` becomes `store: memory` and `stores.redis` goes: a run starts from empty counters and caches;
 * - no admin listener, metrics, traces or access log; one process.
 */
export function testRunConfig(config: Config, options: TestRunOptions): Config {
  const upstreams: Config['upstreams'] = {};
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (upstreamKind(u) !== 'http') continue;
    upstreams[name] = {
      ...u,
      targets:
        u.discover !== undefined
          ? [{ url: options.stubs.byTarget.get(discoveredStub(name))!, weight: 1, backup: false }]
          : u.targets.map((t) => ({ ...t, url: options.stubs.byTarget.get(new URL(t.url).origin)! })),
      discover: undefined,
      tls: undefined,
      healthCheck: { ...u.healthCheck, active: undefined },
    };
  }
  const plugin = (entry: PluginEntry): PluginEntry => {
    const c = entry.config as Record<string, unknown>;
    if (c.store === 'redis') return { name: entry.name, config: { ...c, store: 'memory' } };
    if (entry.name === 'jwt' && typeof c.jwksUri === 'string' && options.jwksUrl !== null)
      return { name: entry.name, config: { ...c, jwksUri: options.jwksUrl } };
    return entry;
  };
  return {
    ...config,
    listeners: config.listeners.flatMap((l) =>
      l.protocol === 'http' || l.protocol === 'https'
        ? [{ ...l, address: '127.0.0.1', port: 0, acceptSockets: 1, proxyProtocol: false }]
        : [],
    ),
    upstreams,
    routes: config.routes.map((r) => ({ ...r, plugins: r.plugins.map(plugin) })),
    plugins: config.plugins.map(plugin),
    stores: { ...config.stores, redis: undefined },
    accessLog: { ...config.accessLog, enabled: false },
    admin: undefined,
    metrics: undefined,
    tracing: undefined,
    workers: 1,
  };
}
