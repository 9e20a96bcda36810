// The consumers directory, compiled once per snapshot: lookups by API key (hashed: the directory never holds a
// plain key), by Basic username and by JWT subject. Authentication plugins get it through PluginEnv.
import { hash } from 'node:crypto';
import type { Consumer } from './identity.ts';

export interface ConsumerConfig {
  readonly name: string;
  readonly groups: readonly string[];
  readonly credentials: {
    /** Plain keys, or `sha256:<hex>` of a key. */
    readonly apiKeys: readonly string[];
    readonly basic?: { readonly username: string; readonly passwordHash: string } | undefined;
    readonly jwt?: { readonly subject: string } | undefined;
  };
}

export interface BasicCredential {
  readonly consumer: Consumer;
  readonly passwordHash: string;
}

/** SHA-256 of an API key as lowercase hex: how keys are stored and looked up. */
export function apiKeyDigest(key: string): string {
  return hash('sha256', key, 'hex'); // one-shot: no Hash object per request
}

export class ConsumerDirectory {
  private readonly byName = new Map<string, Consumer>();
  private readonly byKeyDigest = new Map<string, Consumer>();
  private readonly byUsername = new Map<string, BasicCredential>();
  private readonly bySubject = new Map<string, Consumer>();

  constructor(configs: readonly ConsumerConfig[]) {
    for (const c of configs) {
      const consumer: Consumer = Object.freeze({ name: c.name, groups: Object.freeze([...c.groups]) });
      this.byName.set(c.name, consumer);
      for (const key of c.credentials.apiKeys) {
        const digest = key.startsWith('sha256:') ? key.slice(7).toLowerCase() : apiKeyDigest(key);
        this.byKeyDigest.set(digest, consumer);
      }
      if (c.credentials.basic)
        this.byUsername.set(c.credentials.basic.username, { consumer, passwordHash: c.credentials.basic.passwordHash });
      if (c.credentials.jwt) this.bySubject.set(c.credentials.jwt.subject, consumer);
    }
  }

  get size(): number {
    return this.byName.size;
  }

  named(name: string): Consumer | undefined {
    return this.byName.get(name);
  }

  /**
   * The consumer owning `key`. Looked up by its SHA-256 digest: a map lookup on a digest leaks nothing useful
   * through timing (an attacker cannot steer the digest), unlike comparing the key itself byte by byte.
   */
  byApiKey(key: string): Consumer | undefined {
    return this.byKeyDigest.get(apiKeyDigest(key));
  }

  byBasicUsername(username: string): BasicCredential | undefined {
    return this.byUsername.get(username);
  }

  byJwtSubject(subject: string): Consumer | undefined {
    return this.bySubject.get(subject);
  }
}

export const EMPTY_DIRECTORY = new ConsumerDirectory([]);
