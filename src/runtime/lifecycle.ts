// Signals and file watching around a runtime: SIGTERM/SIGINT drain and exit 0, SIGHUP or a change to the
// config file reloads. A bad new config is logged and the old one keeps serving.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile } from '../config/loader.ts';
import { PLUGIN_SCHEMAS } from '../plugins/registry.ts';
import type { Runtime } from './runtime.ts';

export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
}

export class ConfigReloader {
  private readonly runtime: Runtime;
  private readonly file: string;
  private readonly log: Logger;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReloadResult> | null = null;
  private again = false;

  constructor(runtime: Runtime, file: string, log: Logger) {
    this.runtime = runtime;
    this.file = file;
    this.log = log;
  }

  /** Reloads now; concurrent calls coalesce into one more reload after the running one. */
  reload(reason: string): Promise<ReloadResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.doReload(reason).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.reload(reason);
      }
    });
    return this.running;
  }

  private async doReload(reason: string): Promise<ReloadResult> {
    try {
      const { config } = loadConfigFile(this.file, { plugins: PLUGIN_SCHEMAS });
      await this.runtime.apply(config);
      this.log.info({ reason, version: this.runtime.current.version }, 'config reloaded');
      return { ok: true };
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : (err as Error).message;
      this.log.error({ reason, code: (err as { code?: string }).code, error: message }, 'config reload failed; keeping the running config');
      return { ok: false, error: message };
    }
  }

  /** Watches the config file's folder (editors replace files by rename), debounced. */
  watch(debounceMs = 150): void {
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.reload('file changed');
      }, debounceMs);
    });
    this.watcher.on('error', (err) => this.log.warn({ error: err.message }, 'config watch failed'));
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }
}

/** Installs SIGTERM/SIGINT (drain, exit 0) and SIGHUP (reload). */
export function installSignals(runtime: Runtime, reloader: ConfigReloader | null, log: Logger, onStopped: () => void): void {
  const stop = (signal: string) => {
    log.info({ signal, inFlight: runtime.inFlight }, 'draining');
    reloader?.close();
    runtime.stop().then(() => {
      log.info('stopped');
      onStopped();
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  if (reloader) process.on('SIGHUP', () => void reloader.reload('SIGHUP'));
}
