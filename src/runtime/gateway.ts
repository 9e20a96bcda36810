// Starting a gateway from a config file or text: load and check the config, start the runtime, and the reloader
// that follows the file. The programmatic entry point (src/index.ts) and the CLI and workers start through it.
import type { WorkerSets } from '../discovery/instance-sets.ts';
import { AdminListener } from '../admin/admin-listener.ts';
import type { AdminServer } from '../admin/admin-server.ts';
import type { CachePurges } from '../cache/purge-fanout.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from 'pino';
import { resolve } from 'node:path';
import { parseConfigText } from '../config/loader.ts';
import type { Config } from '../config/schema.ts';
import { createAppLog } from '../observability/app-log.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { LOAD_OPTIONS } from './config-checks.ts';
import { ConfigReloader } from './lifecycle.ts';
import { loadFromSource, openConfigSource, type ConfigSource } from './config-source/source.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import { Runtime } from './runtime.ts';
import { portGuard, type PortClaim } from './port-holders.ts';
import { VERSION } from '../version.ts';

export interface Gateway {
  readonly runtime: Runtime;
  readonly reloader: ConfigReloader | null;
  readonly log: Logger;
  /** The admin listener as bound now (a reload may move it); null without `admin:`, and in a worker of a multi-worker instance. */
  readonly admin: AdminServer | null;
  /** Port of the listener with this name (or the first one). */
  port(name?: string): number;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly configFile?: string;
  /** The config itself; with `configFile`, that file's content (paths resolve from its folder; reloads read it). */
  readonly configText?: string;
  readonly log?: Logger;
  readonly watch?: boolean;
  /** The time the gateway reads (cache freshness, slow start, breakers, ejections, health intervals); default: the system clock. Tests pass a manual one. */
  readonly clock?: Clock;
  /** Share ports another Turnpike listens on (a binary upgrade) instead of refusing them (`--handover`). */
  readonly handover?: boolean;
  /** Set by a worker of a multi-worker instance: its primary probes and shares the health verdicts. */
  readonly worker?: {
    readonly initialHealth: ReadonlyMap<string, boolean>;
    readonly stickySecret: string;
    readonly limitStore: RateStore & ConcurrencyStore;
    readonly cachePurges: CachePurges;
    /** The discovered targets its primary resolves for the instance. */
    readonly discoveredSets: WorkerSets;
  };
}

/**
 * Parses and validates config text against the schema and its cross-references. The checks that read files
 * (certificates, keys, the access log) and the plugins' own checks run when a gateway starts from it.
 */
export function parseConfig(text: string, file = 'config.yaml'): Config {
  return parseConfigText(text, file, { plugins: PLUGIN_SCHEMAS });
}

export async function startGateway(options: StartOptions): Promise<Gateway> {
  let config: Config;
  let source: ConfigSource | undefined;
  let text: string;
  if (options.configFile) {
    // A path, or a store URL (etcd://, redis://). With configText, the text is the source's content as someone
    // else read and checked it (a worker: its primary).
    source = openConfigSource(options.configFile);
    try {
      text = options.configText ?? (await source.read());
      config = loadFromSource(source, text).config;
    } catch (err) {
      source.close();
      throw err;
    }
  } else {
    text = options.configText ?? '';
    config = parseConfigText(text, 'inline config', LOAD_OPTIONS);
  }
  const file = source === undefined ? undefined : resolvedFile(source);
  const log = options.log ?? createAppLog(config.log.level);
  // A worker's primary has checked the ports for the whole instance (its siblings hold them too).
  const guard =
    options.worker === undefined ? portGuard(options.handover === true, (level, f, m) => log[level](f, m)) : undefined;
  if (guard && config.admin !== undefined && config.admin.port !== 0)
    guard([{ name: 'admin', address: config.admin.address, port: config.admin.port }]);
  // The admin listener comes up first (/readyz says 503 until every listener is bound) and closes last; a reload
  // moves, adds or removes it. A worker has none: its primary serves the instance's.
  let runtime: Runtime | null = null;
  let reloader: ConfigReloader | null = null;
  const admin =
    options.worker !== undefined
      ? null
      : await AdminListener.start(config.admin, {
          log,
          runtime: () => runtime,
          reload: source === undefined ? null : () => reloader!.reload('admin API'),
          ready: () => runtime !== null && !runtime.stopRequested,
          metrics: () => runtime?.metrics ?? null,
        });
  try {
    runtime = await startRuntime(config, log, { file, source: source?.name, text }, options, guard);
  } catch (err) {
    source?.close();
    await admin?.close();
    throw err;
  }
  log.info(
    {
      version: VERSION,
      configVersion: runtime.current.version,
      configFile: source?.name ?? 'inline',
      node: process.version,
    },
    'turnpike started',
  );
  reloader = source ? new ConfigReloader(runtime, source, log, admin) : null;
  if (reloader && options.watch) reloader.watch();
  const started = runtime;
  return {
    runtime: started,
    reloader,
    log,
    get admin() {
      return admin?.server ?? null;
    },
    port(name) {
      const all = started.addresses();
      const found = name === undefined ? all[0] : all.find((a) => a.name === name);
      if (!found) throw new Error(`no listener ${name ?? ''}`);
      return found.port;
    },
    async stop() {
      reloader?.close();
      await started.stop();
      await admin?.close();
    },
  };
}

/** A file source's absolute path (relative paths in the config resolve from its folder); undefined for a store. */
function resolvedFile(source: ConfigSource): string | undefined {
  return source.file === undefined ? undefined : resolve(source.file);
}

function startRuntime(
  config: Config,
  log: Logger,
  from: { file: string | undefined; source: string | undefined; text: string },
  options: StartOptions,
  portGuard: ((claims: PortClaim[]) => void) | undefined,
): Promise<Runtime> {
  return Runtime.start(config, log, {
    configFile: from.file,
    configSource: from.source === undefined ? undefined : (from.file ?? from.source),
    configText: from.text,
    portGuard,
    activeChecks: options.worker === undefined,
    clock: options.clock,
    ...(options.worker
      ? {
          initialHealth: options.worker.initialHealth,
          stickySecret: options.worker.stickySecret,
          limitStore: options.worker.limitStore,
          cachePurges: options.worker.cachePurges,
          discoveredSets: options.worker.discoveredSets,
        }
      : {}),
  });
}
