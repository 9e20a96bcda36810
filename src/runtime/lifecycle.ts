// Signals and config watching around a runtime: SIGTERM/SIGINT drain and exit 0, SIGHUP or a change to the
// config (a file, an etcd or Redis key) reloads, SIGUSR1 reopens the log files (logrotate; a handler also keeps Node's inspector closed). A bad new config is logged and the old one keeps serving.
import type { AdminListener } from '../admin/admin-listener.ts';
import { CHANNELS } from '../observability/events.ts';
import type { Logger } from 'pino';
import { ConfigError } from '../config/loader.ts';
import type { Config } from '../config/schema.ts';
import { serialized } from './config-watch.ts';
import { loadFromSource, openConfigSource, type ConfigSource } from './config-source/source.ts';
import type { Runtime } from './runtime.ts';

export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
}

export class ConfigReloader {
  private readonly runtime: Runtime;
  /** Where the config comes from: a file, or a store (etcd, Redis). */
  readonly source: ConfigSource;
  private readonly log: Logger;
  /** The admin listener a reload moves with the config (null: none here, as in a worker). */
  private readonly admin: AdminListener | null;
  private unwatch: (() => void) | null = null;
  /** Reloads now; a call while one runs gets that run's result and one more run follows it. */
  readonly reload: (reason: string) => Promise<ReloadResult> = serialized((reason) =>
    this.run(reason, async () => {
      const text = await this.source.read();
      return { config: loadFromSource(this.source, text).config, text };
    }),
  );

  constructor(runtime: Runtime, source: ConfigSource | string, log: Logger, admin: AdminListener | null = null) {
    this.runtime = runtime;
    this.source = typeof source === 'string' ? openConfigSource(source) : source;
    this.log = log;
    this.admin = admin;
  }

  /** Applies the config text as read and checked elsewhere (a worker: its primary's copy); the source is not read. */
  reloadText(text: string, reason: string): Promise<ReloadResult> {
    return this.run(reason, async () => ({ config: loadFromSource(this.source, text).config, text }));
  }

  private async run(reason: string, load: () => Promise<{ config: Config; text: string }>): Promise<ReloadResult> {
    try {
      const { config, text } = await load();
      // A moved admin listener is bound first, as a new listener is: a taken port fails the reload before the swap.
      const admin = await this.admin?.prepare(config.admin);
      try {
        await this.runtime.apply(config, text);
      } catch (err) {
        await admin?.abort();
        throw err;
      }
      admin?.commit();
      this.log.info({ reason, configVersion: this.runtime.current.version }, 'config reloaded');
      publishReload(this.runtime, true, null);
      return { ok: true };
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : (err as Error).message;
      publishReload(this.runtime, false, message);
      this.log.error(
        { reason, code: (err as { code?: string }).code, error: message },
        'config reload failed; keeping the running config',
      );
      return { ok: false, error: message };
    }
  }

  /** Reloads when the config file (or the store's key) changes. */
  watch(debounceMs = 150): void {
    const reason = this.source.file === undefined ? 'config changed in the store' : 'file changed';
    this.unwatch = this.source.watch(
      () => void this.reload(reason),
      (err) => this.log.warn({ error: err.message }, 'config watch failed'),
      debounceMs,
    );
  }

  close(): void {
    this.unwatch?.();
    this.unwatch = null;
    this.source.close();
  }
}

function publishReload(runtime: Runtime, ok: boolean, error: string | null): void {
  if (CHANNELS.reload.hasSubscribers)
    CHANNELS.reload.publish({ gateway: runtime.gateway, ok, version: runtime.current.version, error });
}

/** Installs SIGTERM/SIGINT (drain, exit 0), SIGHUP (reload) and SIGUSR1 (reopen the log files). */
export function installSignals(
  runtime: Runtime,
  reloader: ConfigReloader | null,
  log: Logger,
  onStopped: () => void,
): void {
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
  process.on('SIGUSR1', () => runtime.reopenLogs());
}
