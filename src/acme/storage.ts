// Where ACME state lives: the account key, each name set's certificate and key, the answers to pending
// challenges and the ordering lock. A folder serves one instance (its workers included); Redis (stores.redis)
// serves every instance, so one orders while the others wait and then read what it stored.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RedisClient } from '../stores/redis-client.ts';

export interface AcmeStorage {
  /** What the storage is, for logs: the folder or "redis". */
  readonly where: string;
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Takes `key` for `ttlMs` unless someone else holds it; whether this caller holds it now. */
  lock(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases `key` if `owner` still holds it. */
  unlock(key: string, owner: string): Promise<void>;
}

/** Keys are paths under the folder ("certs/ID/cert.pem"); a value is written whole to a temp file, then renamed. */
export class FolderStorage implements AcmeStorage {
  readonly where: string;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.where = dir;
  }

  async get(key: string): Promise<string | null> {
    try {
      return await readFile(this.#path(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async set(key: string, value: string): Promise<void> {
    const file = this.#path(key);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, value, { mode: 0o600 }); // keys are secrets: owner only
    await rename(tmp, file);
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async lock(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const file = this.#path(key);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(file, 'wx', 0o600); // O_EXCL: one process creates it
        await handle.writeFile(JSON.stringify({ owner, until: Date.now() + ttlMs }));
        await handle.close();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = await this.#holder(file);
      // A lock left by a process that died is taken over once its time is up.
      if (held !== null && held.until > Date.now()) return held.owner === owner;
      await rm(file, { force: true });
    }
    return false;
  }

  async unlock(key: string, owner: string): Promise<void> {
    const file = this.#path(key);
    if ((await this.#holder(file))?.owner === owner) await rm(file, { force: true });
  }

  async #holder(file: string): Promise<{ owner: string; until: number } | null> {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as { owner: string; until: number };
    } catch {
      return null; // gone, or being written: treated as free once it is gone
    }
  }

  #path(key: string): string {
    if (key.split('/').some((part) => part === '' || part === '.' || part === '..'))
      throw new Error(`bad storage key ${key}`);
    return join(this.#dir, key);
  }
}

const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/** Keys under `turnpike:acme:`; the lock is SET NX PX, released only by its owner (a compare-and-delete script). */
export class RedisStorage implements AcmeStorage {
  readonly where = 'redis';
  readonly #client: () => RedisClient;

  constructor(client: () => RedisClient) {
    this.#client = client;
  }

  get(key: string): Promise<string | null> {
    return this.#client().get(`turnpike:acme:${key}`);
  }

  async set(key: string, value: string): Promise<void> {
    await this.#client().set(`turnpike:acme:${key}`, value);
  }

  async delete(key: string): Promise<void> {
    await this.#client().del(`turnpike:acme:${key}`);
  }

  async lock(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const client = this.#client();
    const k = `turnpike:acme:${key}`;
    if ((await client.set(k, owner, 'PX', ttlMs, 'NX')) === 'OK') return true;
    return (await client.get(k)) === owner;
  }

  async unlock(key: string, owner: string): Promise<void> {
    await this.#client().eval(UNLOCK, 1, `turnpike:acme:${key}`, owner);
  }
}
