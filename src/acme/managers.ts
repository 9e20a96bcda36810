// The runtime's ACME managers, one per https listener with `acme:`, kept across reloads while the listener's acme
// block (and the listener's TLS versions and ciphers) are unchanged. Also the http-01 responder every http
// listener asks before routing (GET /.well-known/acme-challenge/TOKEN).
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { constants as cryptoConstants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { RedisClient } from '../stores/redis-client.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import { MODERN_CIPHERS } from '../config/listener-schema.ts';
import { AcmeManager, type AcmeLog } from './manager.ts';
import { FolderStorage, RedisStorage, type AcmeStorage } from './storage.ts';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export interface AcmeManagersOptions {
  readonly clock: Clock;
  /** false: placeholders only, nothing ordered or read from storage (route tests). */
  readonly orders: boolean;
  readonly log: AcmeLog;
  /** The stores.redis client of this process (undefined: not configured). */
  readonly redis: (config: Config) => RedisClient | undefined;
  readonly onOrder: (listener: string, outcome: 'issued' | 'failed') => void;
}

export class AcmeManagers {
  readonly #o: AcmeManagersOptions;
  readonly #managers = new Map<string, { key: string; manager: AcmeManager }>();
  readonly #watchers = new Map<string, Set<() => void>>();

  constructor(options: AcmeManagersOptions) {
    this.#o = options;
  }

  /** The manager of listener `name`, if it has `acme:`. */
  manager(name: string): AcmeManager | undefined {
    return this.#managers.get(name)?.manager;
  }

  get size(): number {
    return this.#managers.size;
  }

  /** Calls `fn` whenever listener `name`'s ACME certificate changes; returns the unsubscribe. */
  watch(name: string, fn: () => void): () => void {
    let set = this.#watchers.get(name);
    if (set === undefined) this.#watchers.set(name, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Starts managers for new acme blocks (each serves its placeholder at once), stops those the config dropped. */
  async sync(config: Config, configDir: string): Promise<void> {
    const wanted = new Set<string>();
    for (const l of config.listeners) {
      if (l.protocol !== 'https' || l.acme === undefined) continue;
      wanted.add(l.name);
      const settings = { ...l.acme, ...(l.acme.hook !== undefined ? { hook: resolve(configDir, l.acme.hook) } : {}) };
      const contextOptions: SecureContextOptions = {
        minVersion: l.tls?.minVersion ?? 'TLSv1.2',
        ...(l.tls?.maxVersion !== undefined ? { maxVersion: l.tls.maxVersion } : {}),
        ciphers: l.tls?.ciphers ?? MODERN_CIPHERS,
        honorCipherOrder: true,
        secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION, // as the certificate store's contexts
        sessionIdContext: 'turnpike-tls',
      };
      const key = JSON.stringify([settings, contextOptions, settings.storage === 'redis' ? config.stores.redis : null]);
      if (this.#managers.get(l.name)?.key === key) continue;
      const name = l.name;
      const manager = new AcmeManager({
        listener: name,
        settings,
        storage: this.#storage(settings.storage, config, configDir),
        directoryCa: settings.ca === undefined ? undefined : readFileSync(resolve(configDir, settings.ca), 'utf8'),
        clock: this.#o.clock,
        log: this.#o.log,
        contextOptions,
        onCertificate: () => this.#watchers.get(name)?.forEach((fn) => fn()),
        onOrder: (outcome) => this.#o.onOrder(name, outcome),
      });
      await manager.prepare();
      this.#managers.get(name)?.manager.stop();
      this.#managers.set(name, { key, manager });
      this.#watchers.get(name)?.forEach((fn) => fn());
    }
    for (const [name, { manager }] of this.#managers) {
      if (wanted.has(name)) continue;
      manager.stop();
      this.#managers.delete(name);
    }
  }

  /** Starts ordering (the listeners are open now). */
  run(): void {
    if (!this.#o.orders) return;
    for (const { manager } of this.#managers.values()) manager.run();
  }

  /** The key authorization for an http-01 token, from whichever listener's manager published it. */
  async httpAnswer(token: string): Promise<string | undefined> {
    for (const { manager } of this.#managers.values()) {
      const answer = await manager.httpAnswer(token);
      if (answer !== undefined) return answer;
    }
    return undefined;
  }

  stopAll(): void {
    for (const { manager } of this.#managers.values()) manager.stop();
    this.#managers.clear();
  }

  #storage(storage: string, config: Config, configDir: string): AcmeStorage {
    if (storage === 'redis') {
      return new RedisStorage(() => {
        const client = this.#o.redis(config);
        // validate refuses storage: redis without stores.redis; kept for a config built in code.
        if (client === undefined) throw new Error('acme.storage is redis but stores.redis is not configured');
        return client;
      });
    }
    return new FolderStorage(isAbsolute(storage) ? storage : resolve(configDir, storage));
  }
}
