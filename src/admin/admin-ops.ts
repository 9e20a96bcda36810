// What the admin API reads and changes in a running gateway, as plain operations on one Runtime. A single process
// runs them in place; the primary of a multi-worker instance sends them to every worker over IPC
// (worker-messages.ts) and merges the answers (merge-ops.ts), so both give the same JSON.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { DashboardRaw } from '../observability/dashboard-stats.ts';
import type { ExplainInput } from '../explain/request.ts';
import { ROUTE_TERMINALS } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { configDirOf } from '../runtime/open-listener.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import type { Target } from '../upstream/target.ts';
import { deregister, instanceKey, readyWithin, register } from '../discovery/redis-keys.ts';
import { redactConfig } from './redact.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface PurgeTarget {
  readonly host?: string;
  readonly path: string;
  readonly query: string;
  readonly prefix: boolean;
}

export type AdminOp =
  | { readonly op: 'config' }
  | { readonly op: 'routes' }
  | { readonly op: 'upstreams' }
  | { readonly op: 'drain'; readonly upstream: string; readonly target: string; readonly drained: boolean }
  | { readonly op: 'purge'; readonly target: PurgeTarget }
  | { readonly op: 'certificates' }
  | { readonly op: 'log-level'; readonly level: LogLevel }
  | { readonly op: 'dashboard' }
  /** Registers (ttlMs given) or removes an instance of a service in stores.redis (redis discovery). */
  | {
      readonly op: 'discovery-redis';
      readonly service: string;
      readonly url: string;
      readonly ttlMs?: number;
      readonly weight?: number;
    }
  /** What the gateway would do with one request (resolves: it may ask an identity provider or a Redis). */
  | { readonly op: 'explain'; readonly request: ExplainInput };

export interface TargetView {
  readonly target: string;
  readonly url: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly healthy: boolean;
  readonly inFlight: number;
  readonly ejected: boolean;
  readonly drained: boolean;
  readonly inRotation: boolean;
  /** Where the target came from: "config", "admin", or the discovery source that found it. */
  readonly source: string;
}

export interface UpstreamView {
  readonly name: string;
  readonly balance: string;
  readonly breaker: string | null;
  readonly usable: number;
  readonly targets: TargetView[];
}

/** One process's part of the live dashboard: its raw counts (they add up across workers) and its upstreams. */
export interface DashboardAnswer {
  readonly version: number;
  readonly stats: DashboardRaw;
  readonly upstreams: UpstreamView[];
}

/** host:port with the scheme's default port spelled out. */
export function hostPort(target: Target): string {
  const u = target.origin;
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

export function describe(pool: UpstreamPool, t: Target): TargetView {
  return {
    target: hostPort(t),
    url: t.url,
    weight: t.weight,
    backup: t.backup,
    healthy: t.healthy,
    inFlight: t.active,
    ejected: pool.outliers?.isEjected(t.key) ?? false,
    drained: pool.state.paused.has(t.key),
    inRotation: pool.state.usableSet.has(t),
    source: t.source,
  };
}

function upstreamViews(runtime: Runtime): UpstreamView[] {
  return [...runtime.current.upstreams.values()].map((pool) => ({
    name: pool.name,
    balance: pool.config.balance,
    breaker: pool.breaker?.state ?? null,
    usable: pool.usableCount,
    targets: pool.targets.map((t) => describe(pool, t)),
  }));
}

function findTarget(runtime: Runtime, name: string, target: string): { pool: UpstreamPool; t: Target } {
  const pool = runtime.current.upstreams.get(name);
  if (pool === undefined) throw new TurnpikeError('TP_ADMIN_NOT_FOUND', `no upstream "${name}"`);
  const wanted = target.toLowerCase();
  const t = pool.targets.find((x) => hostPort(x) === wanted || x.origin.host === wanted);
  if (t === undefined)
    throw new TurnpikeError('TP_ADMIN_NOT_FOUND', `upstream "${name}" has no target ${target} (name it host:port)`);
  return { pool, t };
}

/** DNS and IP names from subjectAltName, else the subject's CN. */
function namesOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san) return san.split(', ').map((n) => n.replace(/^(DNS|IP Address):/, ''));
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
  return cn ? [cn[1]!] : [];
}

function certificates(runtime: Runtime): object[] {
  const dir = configDirOf(runtime.configFile);
  const out: object[] = [];
  for (const l of runtime.current.config.listeners) {
    if (l.protocol !== 'https') continue;
    const acme = runtime.acme.manager(l.name)?.certificate();
    if (acme !== undefined) {
      // file: where it comes from; a placeholder is self-signed, served until the CA's certificate is there.
      const cert = new X509Certificate(acme.pem);
      const notAfter = new Date(cert.validTo);
      out.push({
        listener: l.name,
        file: acme.placeholder ? 'acme (placeholder)' : 'acme',
        names: acme.names,
        issuer: cert.issuer.replaceAll('\n', ', '),
        notBefore: new Date(cert.validFrom).toISOString(),
        notAfter: notAfter.toISOString(),
        daysLeft: Math.floor((notAfter.getTime() - Date.now()) / 86_400_000),
      });
    }
    for (const c of l.tls?.certificates ?? []) {
      try {
        // A chain file: the first certificate is the one served for its names.
        const cert = new X509Certificate(readFileSync(resolve(dir, c.cert)));
        const notAfter = new Date(cert.validTo);
        out.push({
          listener: l.name,
          file: c.cert,
          names: namesOf(cert),
          issuer: cert.issuer.replaceAll('\n', ', '),
          notBefore: new Date(cert.validFrom).toISOString(),
          notAfter: notAfter.toISOString(),
          daysLeft: Math.floor((notAfter.getTime() - Date.now()) / 86_400_000),
        });
      } catch (err) {
        out.push({ listener: l.name, file: c.cert, error: (err as Error).message });
      }
    }
  }
  return out;
}

/** PUT/DELETE /api/discovery/redis/{service}: one write to the shared Redis (any one process may make it). */
async function redisRegistration(runtime: Runtime, op: Extract<AdminOp, { op: 'discovery-redis' }>): Promise<object> {
  const config = runtime.current.config;
  const client = runtime.sharedRedis();
  if (client === undefined || config.stores.redis === undefined)
    throw new TurnpikeError('TP_ADMIN_UNSUPPORTED', 'this gateway has no stores.redis to register services in');
  const prefix = config.discovery.redis.prefix;
  const key = instanceKey(prefix, op.service, op.url);
  try {
    await readyWithin(client, config.stores.redis.connectTimeout);
    if (op.ttlMs === undefined) {
      const removed = await deregister(client, prefix, op.service, op.url);
      return { service: op.service, url: op.url, key, removed };
    }
    const reg = { url: op.url, ...(op.weight !== undefined ? { weight: op.weight } : {}) };
    await register(client, prefix, op.service, reg, op.ttlMs);
    return {
      service: op.service,
      url: op.url,
      key,
      ttlMs: op.ttlMs,
      ...(op.weight !== undefined ? { weight: op.weight } : {}),
    };
  } catch (err) {
    throw new TurnpikeError('TP_STORE_UNAVAILABLE', `Redis: ${(err as Error).message}`);
  }
}

/** Runs `op` on `runtime` (whose gateway log is `log`); a TurnpikeError says what was wrong with the call. */
export function runAdminOp(runtime: Runtime, log: Logger, op: AdminOp): unknown {
  const snapshot = runtime.current;
  switch (op.op) {
    case 'config':
      return {
        version: snapshot.version,
        file: runtime.configFile ?? null,
        source: runtime.configSource,
        hash: runtime.configHash ?? null,
        config: redactConfig(snapshot.config, PLUGIN_SCHEMAS),
      };
    case 'routes':
      return {
        version: snapshot.version,
        globalPlugins: snapshot.config.plugins.map((p) => p.name),
        routes: snapshot.config.routes.map((r, i) => ({
          name: snapshot.routes[i]?.name ?? r.name ?? `routes[${i}]`,
          match: r.match,
          terminal: Object.keys(ROUTE_TERMINALS).find((k) => r[k as keyof typeof ROUTE_TERMINALS] !== undefined),
          ...(r.upstream !== undefined ? { upstream: r.upstream } : {}),
          ...(r.bridge !== undefined ? { upstream: r.bridge.upstream } : {}),
          plugins: r.plugins.map((p) => p.name),
        })),
      };
    case 'upstreams':
      return { version: snapshot.version, upstreams: upstreamViews(runtime) };
    case 'drain': {
      const { pool, t } = findTarget(runtime, op.upstream, op.target);
      if (op.drained) pool.state.pauseTarget(t.key);
      else pool.state.resumeTarget(t.key);
      return { upstream: pool.name, ...describe(pool, t) };
    }
    case 'purge':
      return runtime.cachePurges
        .purgeEverywhere(op.target, snapshot.sharedCaches.values())
        .then((purged) => ({ purged }));
    case 'certificates':
      return { certificates: certificates(runtime) };
    case 'log-level': {
      const previous = log.level;
      log.level = op.level;
      return { level: op.level, previous };
    }
    case 'dashboard':
      return {
        version: snapshot.version,
        stats: runtime.dashboardStats.raw(),
        upstreams: upstreamViews(runtime),
      } satisfies DashboardAnswer;
    case 'discovery-redis':
      return redisRegistration(runtime, op);
    case 'explain': {
      const bound = (name: string) => runtime.addresses().find((a) => a.name === name)?.port;
      // Imported on first use: the primary of a multi-worker instance loads no router.
      return import('../explain/explain.ts').then((m) => m.explain(snapshot, op.request, { boundPort: bound }));
    }
  }
}
