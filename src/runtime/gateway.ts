// Starting a gateway from a config file or text: load and check the config, start the runtime, and the reloader
// that follows the file. The programmatic entry point (src/index.ts) and the CLI and workers start through it.
import type { CachePurges } from '../cache/purge-fanout.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from 'pino';
import { loadConfigFile, parseConfigText } from '../config/loader.ts';
import type { Config } from '../config/schema.ts';
import { createAppLog } from '../observability/app-log.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import { LOAD_OPTIONS } from './config-checks.ts';
import { ConfigReloader } from './lifecycle.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import { Runtime } from './runtime.ts';
import { VERSION } from '../version.ts';

export interface Gateway {
  readonly runtime: Runtime;
  readonly reloader: ConfigReloader | null;
  readonly log: Logger;
  /** Port of the listener with this name (or the first one). */
  port(name?: string): number;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly configFile?: string;
  readonly configText?: string;
  readonly log?: Logger;
  readonly watch?: boolean;
  /** The time the gateway reads (cache freshness, slow start, breakers, ejections, health intervals); default: the system clock. Tests pass a manual one. */
  readonly clock?: Clock;
  /** Set by a worker of a multi-worker instance: its primary probes and shares the health verdicts. */
  readonly worker?: {
    readonly initialHealth: ReadonlyMap<string, boolean>;
    readonly stickySecret: string;
    readonly limitStore: RateStore & ConcurrencyStore;
    readonly cachePurges: CachePurges;
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
  let file: string | undefined;
  if (options.configFile) {
    const loaded = loadConfigFile(options.configFile, LOAD_OPTIONS);
    config = loaded.config;
    file = loaded.file;
  } else {
    config = parseConfigText(options.configText ?? '', 'inline config', LOAD_OPTIONS);
  }
  const log = options.log ?? createAppLog(config.log.level);
  const runtime = await Runtime.start(config, log, {
    configFile: file,
    activeChecks: options.worker === undefined,
    clock: options.clock,
    ...(options.worker
      ? {
          initialHealth: options.worker.initialHealth,
          stickySecret: options.worker.stickySecret,
          limitStore: options.worker.limitStore,
          cachePurges: options.worker.cachePurges,
        }
      : {}),
  });
  log.info(
    { version: VERSION, configVersion: runtime.current.version, configFile: file ?? 'inline', node: process.version },
    'turnpike started',
  );
  const reloader = file ? new ConfigReloader(runtime, file, log) : null;
  if (reloader && options.watch) reloader.watch();
  return {
    runtime,
    reloader,
    log,
    port(name) {
      const all = runtime.addresses();
      const found = name === undefined ? all[0] : all.find((a) => a.name === name);
      if (!found) throw new Error(`no listener ${name ?? ''}`);
      return found.port;
    },
    async stop() {
      reloader?.close();
      await runtime.stop();
    },
  };
}
