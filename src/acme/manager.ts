// One https listener's ACME certificate: read from storage, ordered when missing or due for renewal (under the
// storage's lock, so one process orders at a time), served for its names. Until a certificate exists a
// self-signed placeholder is served. Every process (each worker, each instance) runs its own manager: the one
// that takes the lock orders, the others poll storage until the certificate is there (and pick up tls-alpn-01
// challenge certificates meanwhile), so ordering happens once per storage.
import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Clock } from '../clock.ts';
import type { AcmeSettings } from '../config/acme-schema.ts';
// order.ts (acme-client, axios) and placeholder.ts (@peculiar/x509) load on first use: a config without acme: never pays for them.
import type { PemPair } from './placeholder.ts';
import type { AcmeStorage } from './storage.ts';

/** How often a certificate far from renewal is looked at again (storage may hold a newer one: another instance renewed). */
const CHECK_MS = 60 * 60_000;
/** While another process holds the lock: how often storage is polled for its certificate. */
export const WAIT_MS = 1000;
/** An order that takes longer than this lets the lock go (a process that died while ordering). */
const LOCK_TTL_MS = 10 * 60_000;
const MAX_BACKOFF_MS = 10 * 60_000;

export interface AcmeLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

export interface AcmeManagerOptions {
  readonly listener: string;
  readonly settings: AcmeSettings;
  readonly storage: AcmeStorage;
  /** PEM of the CA that signs the directory's TLS certificate (acme.ca), already read. */
  readonly directoryCa: string | undefined;
  readonly clock: Clock;
  readonly log: AcmeLog;
  /** Versions, ciphers... of the listener: the contexts made here use them. */
  readonly contextOptions: SecureContextOptions;
  /** The served certificate changed (placeholder → issued, renewal, another instance's). */
  readonly onCertificate: () => void;
  /** An order ended. */
  readonly onOrder: (outcome: 'issued' | 'failed') => void;
}

interface Served {
  readonly pair: PemPair;
  readonly context: SecureContext;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly placeholder: boolean;
}

export class AcmeManager {
  readonly settings: AcmeSettings;
  readonly #o: AcmeManagerOptions;
  readonly #id: string;
  readonly #owner = randomUUID();
  readonly #names: Set<string>;
  readonly #wildcards: Set<string>; // '*.b.example.com' stored as 'b.example.com'
  #served: Served | undefined;
  /** tls-alpn-01 certificates of pending challenges, by name (this process's own, or read from storage). */
  readonly #alpn = new Map<string, SecureContext>();
  /** http-01 answers of this process's pending challenges, by token (the others are read from storage). */
  readonly #tokens = new Map<string, string>();
  #cancel: (() => void) | undefined;
  #stopped = false;
  #failures = 0;
  #running: Promise<void> | undefined;

  constructor(options: AcmeManagerOptions) {
    this.#o = options;
    this.settings = options.settings;
    const s = options.settings;
    this.#id = createHash('sha256')
      .update(JSON.stringify([s.directory, [...s.domains].sort(), s.keyType]))
      .digest('hex')
      .slice(0, 16);
    this.#names = new Set(s.domains.filter((d) => !d.startsWith('*.')));
    this.#wildcards = new Set(s.domains.filter((d) => d.startsWith('*.')).map((d) => d.slice(2)));
  }

  /** Makes the placeholder, served until a certificate is read from storage or issued. */
  async prepare(): Promise<void> {
    const { makePlaceholder } = await import('./placeholder.ts');
    const pair = await makePlaceholder(this.settings.domains, this.#o.clock.now());
    if (this.#served === undefined) this.#served = this.#serve(pair, true);
  }

  /** Starts the rounds (once the listeners that answer challenges are open); idempotent. */
  run(): void {
    if (this.#cancel === undefined && this.#running === undefined) this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }

  /** Resolves once the round in progress (if any) is over: for tests and a clean stop. */
  settled(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /** The context for `servername`: a pending tls-alpn-01 challenge's, else the certificate's; undefined if not ours. */
  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const alpn = this.#alpn.get(name);
    if (alpn !== undefined) return alpn;
    return this.covers(name) ? this.#served?.context : undefined;
  }

  covers(name: string): boolean {
    if (this.#names.has(name)) return true;
    const dot = name.indexOf('.');
    return dot > 0 && this.#wildcards.has(name.slice(dot + 1));
  }

  /** Whether a tls-alpn-01 challenge for `servername` is pending (the handshake then negotiates acme-tls/1). */
  hasAlpnChallenge(servername: string): boolean {
    return this.#alpn.has(servername.toLowerCase().replace(/\.$/, ''));
  }

  /** The default context when the listener has no tls certificates. */
  get defaultContext(): SecureContextOptions | undefined {
    const served = this.#served;
    return served === undefined
      ? undefined
      : { ...this.#o.contextOptions, key: served.pair.key, cert: served.pair.cert };
  }

  /** For the certificate event and metrics: the served certificate's names and expiry. */
  certificate(): { names: readonly string[]; validTo: string; placeholder: boolean; pem: string } | undefined {
    const served = this.#served;
    if (served === undefined) return undefined;
    return {
      names: this.settings.domains,
      validTo: new Date(served.notAfter).toUTCString(),
      placeholder: served.placeholder,
      pem: served.pair.cert,
    };
  }

  /** The key authorization for an http-01 token: this process's, else from storage (another worker or instance). */
  async httpAnswer(token: string): Promise<string | undefined> {
    const local = this.#tokens.get(token);
    if (local !== undefined) return local;
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) return undefined;
    return (await this.#o.storage.get(`http-01/${token}`)) ?? undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#cancel?.();
    this.#cancel = this.#o.clock.schedule(ms, () => {
      this.#running = this.#round().finally(() => (this.#running = undefined));
    });
  }

  async #round(): Promise<void> {
    if (this.#stopped) return;
    const { storage, log, listener } = this.#o;
    let ordering = false;
    try {
      const stored = await this.#readStored();
      if (stored !== undefined) this.#use(stored);
      const due = stored === undefined ? 0 : this.#renewAt(stored) - this.#o.clock.now();
      if (due > 0) {
        this.#failures = 0;
        return this.#schedule(Math.min(due, CHECK_MS));
      }
      const lockKey = `locks/${this.#id}`;
      if (!(await storage.lock(lockKey, this.#owner, LOCK_TTL_MS))) {
        await this.#readAlpnChallenges();
        return this.#schedule(WAIT_MS);
      }
      try {
        // Whoever held the lock before may have just stored a fresh certificate.
        const again = await this.#readStored();
        if (again !== undefined && this.#renewAt(again) > this.#o.clock.now()) {
          this.#use(again);
        } else {
          log.info(
            { listener, domains: this.settings.domains, storage: storage.where },
            'ACME: ordering a certificate',
          );
          ordering = true;
          const pair = await this.#order();
          await storage.set(`certs/${this.#id}/key.pem`, pair.key);
          await storage.set(`certs/${this.#id}/cert.pem`, pair.cert);
          const served = this.#use(pair);
          this.#o.onOrder('issued');
          log.info(
            { listener, domains: this.settings.domains, validTo: new Date(served.notAfter).toISOString() },
            'ACME: certificate issued',
          );
        }
      } finally {
        await storage.unlock(lockKey, this.#owner).catch(() => undefined);
      }
      this.#failures = 0;
      const served = this.#served!;
      this.#schedule(Math.max(WAIT_MS, Math.min(this.#renewAt(served) - this.#o.clock.now(), CHECK_MS)));
    } catch (err) {
      this.#failures++;
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(this.#failures, 10));
      if (ordering) this.#o.onOrder('failed'); // not a storage that could not be read
      log.warn(
        { listener, domains: this.settings.domains, error: (err as Error).message, retryInMs: backoff },
        'ACME: no certificate this time; the current one stays in service',
      );
      this.#schedule(backoff);
    }
  }

  /**
   * When a certificate is renewed: `renewBefore` before it expires, but never before half its life is over, so
   * a CA's short-lived certificates (days, with the 30-day default) are not ordered again and again.
   */
  #renewAt(cert: { notBefore: number; notAfter: number }): number {
    return Math.max(cert.notAfter - this.settings.renewBefore, cert.notBefore + (cert.notAfter - cert.notBefore) / 2);
  }

  async #order(): Promise<PemPair> {
    const accountKeyName = `accounts/${createHash('sha256').update(this.settings.directory).digest('hex').slice(0, 16)}/key.pem`;
    const { orderCertificate } = await import('./order.ts');
    return orderCertificate({
      settings: this.settings,
      directoryCa: this.#o.directoryCa,
      accountKey: async (make) => {
        const have = await this.#o.storage.get(accountKeyName);
        if (have !== null) return have;
        const made = await make();
        await this.#o.storage.set(accountKeyName, made);
        return made;
      },
      publish: (challenge) => this.#publish(challenge),
      unpublish: (challenge) => this.#unpublish(challenge),
    });
  }

  async #publish(c: ChallengeAnswer): Promise<void> {
    const storage = this.#o.storage;
    if (c.type === 'http-01') {
      this.#tokens.set(c.token, c.keyAuthorization);
      await storage.set(`http-01/${c.token}`, c.keyAuthorization);
    } else if (c.type === 'tls-alpn-01') {
      this.#alpn.set(c.domain, this.#context(c.certificate));
      await storage.set(`tls-alpn-01/${c.domain}`, JSON.stringify(c.certificate));
      // The other processes on this storage pick it up on their next poll: give them that long.
      await new Promise((resolve) => setTimeout(resolve, WAIT_MS * 1.5));
    }
  }

  async #unpublish(c: ChallengeAnswer): Promise<void> {
    if (c.type === 'http-01') {
      this.#tokens.delete(c.token);
      await this.#o.storage.delete(`http-01/${c.token}`);
    } else if (c.type === 'tls-alpn-01') {
      this.#alpn.delete(c.domain);
      await this.#o.storage.delete(`tls-alpn-01/${c.domain}`);
    }
  }

  /** While another process orders: its tls-alpn-01 certificates, so a handshake landing here answers too. */
  async #readAlpnChallenges(): Promise<void> {
    if (this.settings.challenge !== 'tls-alpn-01') return;
    for (const domain of this.#names) {
      const raw = await this.#o.storage.get(`tls-alpn-01/${domain}`);
      if (raw === null) this.#alpn.delete(domain);
      else this.#alpn.set(domain, this.#context(JSON.parse(raw) as PemPair));
    }
  }

  async #readStored(): Promise<(PemPair & { notBefore: number; notAfter: number }) | undefined> {
    const storage = this.#o.storage;
    const [key, cert] = await Promise.all([
      storage.get(`certs/${this.#id}/key.pem`),
      storage.get(`certs/${this.#id}/cert.pem`),
    ]);
    if (key === null || cert === null) return undefined;
    try {
      const leaf = new X509Certificate(cert);
      // Written key first, then cert: a reader between the two sees a mismatch and waits for the next round.
      if (!leaf.checkPrivateKey(createPrivateKey(key))) return undefined;
      return { key, cert, notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
    } catch {
      return undefined;
    }
  }

  #use(pair: PemPair): Served {
    const current = this.#served;
    if (current !== undefined && !current.placeholder && current.pair.cert === pair.cert) return current;
    this.#served = this.#serve(pair, false);
    this.#alpn.clear();
    this.#o.onCertificate();
    return this.#served;
  }

  #serve(pair: PemPair, placeholder: boolean): Served {
    const leaf = new X509Certificate(pair.cert);
    const [notBefore, notAfter] = [Date.parse(leaf.validFrom), Date.parse(leaf.validTo)];
    return { pair, context: this.#context(pair), notBefore, notAfter, placeholder };
  }

  #context(pair: PemPair): SecureContext {
    return createSecureContext({ ...this.#o.contextOptions, key: pair.key, cert: pair.cert });
  }
}

export type ChallengeAnswer =
  | { readonly type: 'http-01'; readonly token: string; readonly keyAuthorization: string }
  | { readonly type: 'tls-alpn-01'; readonly domain: string; readonly certificate: PemPair }
  | { readonly type: 'dns-01'; readonly domain: string; readonly value: string };
