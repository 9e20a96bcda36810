// One ioredis client per process for `stores.redis`, shared by every plugin and kept across reloads while its
// settings are unchanged. Commands never wait for a connection: without an offline queue and with a command
// timeout, an unreachable Redis fails a call within `commandTimeout`, and the plugin's onStoreError decides.
import { Redis } from 'ioredis';

export interface RedisSettings {
  readonly url: string;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
}

export class RedisClients {
  private client: Redis | null = null;
  private key = '';
  private readonly onError: (err: Error) => void;

  constructor(onError: (err: Error) => void) {
    this.onError = onError;
  }

  /** The client for these settings (created on first use); a different URL or timeout replaces the old one. */
  get(settings: RedisSettings): Redis {
    const key = `${settings.url}|${settings.connectTimeout}|${settings.commandTimeout}`;
    if (this.client !== null && this.key === key) return this.client;
    const old = this.client;
    this.client = new Redis(settings.url, {
      connectTimeout: settings.connectTimeout,
      commandTimeout: settings.commandTimeout,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Keep trying to come back, at most every 2 s: the plugins answer by onStoreError meanwhile.
      retryStrategy: (times) => Math.min(100 * times, 2000),
      lazyConnect: false,
      // Commands issued in the same tick go out in one write: under load, one syscall for many requests.
      enableAutoPipelining: true,
    });
    this.client.on('error', this.onError);
    this.key = key;
    if (old !== null) setTimeout(() => old.disconnect(), 5000).unref(); // let calls in flight finish
    return this.client;
  }

  close(): void {
    this.client?.disconnect();
    this.client = null;
  }
}
