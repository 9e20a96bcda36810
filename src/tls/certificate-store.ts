// The certificates of one TLS listener: one SecureContext per certificate, picked per handshake by SNI
// (exact name, then a one-label wildcard, then the first certificate), rebuilt when the files change.
import { constants as cryptoConstants } from 'node:crypto';
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import {
  createSecureContext,
  type SecureContext,
  type SecureContextOptions,
  type SecureVersion,
  type Server as TlsServer,
  type TlsOptions,
} from 'node:tls';
import { describeNegotiable, type Negotiable } from './negotiable.ts';
import {
  checkVersions,
  describePath,
  loadPair,
  pairWarnings,
  parseCertificates,
  readConfigFile,
  resolvePath,
  TlsConfigError,
  type ClientAuthMode,
  type LoadedPair,
  type TlsConfig,
} from './tls-options.ts';

export interface StoreCallbacks {
  /** After a reload replaced at least one file's contents: which certificates (config indexes) changed. */
  onReload?: (event: ReloadEvent) => void;
  /** A changed file that could not be used (the previous certificate stays in service). */
  onError?: (err: TlsConfigError) => void;
  /** Quiet time after the last file event before reloading (a renewal writes cert and key one by one). */
  debounceMs?: number;
}

export interface ReloadEvent {
  readonly changed: readonly number[];
  readonly caChanged: boolean;
}

export interface CertificateInfo {
  readonly index: number;
  readonly certFile: string;
  readonly names: readonly string[];
  readonly serialNumber: string;
  readonly validTo: string;
}

interface CaBundle {
  readonly file: string;
  readonly pem: Buffer;
}

// One value for every context of every store: a session stays resumable whichever context served it, and
// OpenSSL requires one when client certificates are requested.
const SESSION_ID_CONTEXT = 'turnpike-tls';

export class CertificateStore {
  readonly clientAuth: ClientAuthMode;
  readonly forwardHeader: string | undefined;
  /** Load-time findings (expiry, duplicate names, ...) for the caller to pass to its warn(). */
  readonly warnings: string[] = [];
  onReload: ((event: ReloadEvent) => void) | undefined;
  onError: ((err: TlsConfigError) => void) | undefined;

  readonly #config: TlsConfig;
  readonly #baseDir: string;
  readonly #minVersion: SecureVersion;
  readonly #maxVersion: SecureVersion;
  readonly #debounceMs: number;
  #pairs: LoadedPair[];
  #ca: CaBundle | undefined;
  #contexts: SecureContext[] = [];
  #exact = new Map<string, number>();
  #wildcard = new Map<string, number>(); // '*.b.example.com' is stored under 'b.example.com'
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #servers = new Set<TlsServer>();
  #lastErrors = new Map<string, string>(); // file → message, so an unchanged bad file is reported once

  constructor(config: TlsConfig, baseDir: string, callbacks: StoreCallbacks = {}) {
    if (config.certificates.length === 0)
      throw new TlsConfigError('tls.certificates: at least one certificate is required');
    this.#config = config;
    this.#baseDir = baseDir;
    const versions = checkVersions(config);
    this.#minVersion = versions.minVersion;
    this.#maxVersion = versions.maxVersion;
    this.#debounceMs = callbacks.debounceMs ?? 200;
    this.onReload = callbacks.onReload;
    this.onError = callbacks.onError;
    this.clientAuth = config.clientAuth?.mode ?? 'off';
    this.forwardHeader = config.clientAuth?.forwardHeader?.toLowerCase();
    this.#pairs = config.certificates.map((pair, i) => loadPair(i, pair, baseDir));
    this.#ca = this.#loadCa();
    if (this.clientAuth === 'off' && config.clientAuth?.ca !== undefined) {
      this.warnings.push('tls.clientAuth.ca is set but clientAuth.mode is off: client certificates are not requested');
    }
    this.#contexts = this.#buildContexts(this.#pairs, this.#ca);
    this.#rebuildIndex(true);
    this.#pairs.forEach((pair, i) => this.warnings.push(...pairWarnings(i, pair)));
  }

  /** Options for tls.createServer / https.createServer / http2.createSecureServer (ALPNProtocols: the caller's). */
  secureOptions(): TlsOptions {
    return {
      ...this.#contextOptions(this.#pairs[0]!, this.#ca),
      SNICallback: this.sniCallback,
      requestCert: this.clientAuth !== 'off',
      // optional: the handshake succeeds without a (valid) certificate; clientIdentity() then answers null.
      rejectUnauthorized: this.clientAuth === 'require',
    };
  }

  /** For the server's SNICallback option; bound, so it can be passed around. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.#contexts[this.indexFor(servername)]);
  };

  /** Config index of the certificate served for `servername` (0, the default, when nothing matches). */
  indexFor(servername: string): number {
    let name = servername.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    // RFC 6125 §6.4.3: the wildcard stands for exactly one whole, non-empty left-most label.
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.#wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return 0;
  }

  certificates(): CertificateInfo[] {
    return this.#pairs.map((p, index) => ({
      index,
      certFile: p.certFile,
      names: p.names,
      serialNumber: p.leaf.serialNumber,
      validTo: p.leaf.validTo,
    }));
  }

  /**
   * Keeps the server's own default context in step with reloads: Node calls SNICallback only for clients
   * that send a server name, the others get the context the server was created with.
   */
  attach(server: TlsServer): void {
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
  }

  /** Versions and cipher suites a client can negotiate with the default certificate (probed in memory). */
  describeNegotiable(): Promise<Negotiable> {
    return describeNegotiable(this.#contextOptions(this.#pairs[0]!, this.#ca));
  }

  /** Reloads on changes in the directories of the certificate, key and CA files (and of their targets). */
  watch(): this {
    if (this.#watchers.length > 0) return this;
    const dirs = new Set<string>();
    for (const file of this.#files()) {
      dirs.add(dirname(file));
      try {
        dirs.add(dirname(realpathSync(file))); // a symlinked file may be rewritten where it really lives
      } catch {
        // gone for now: the directory watch sees it come back
      }
    }
    for (const dir of dirs) {
      // Any event in the directory: renames (atomic replace, Kubernetes ..data swaps) as well as writes.
      // reload() compares bytes, so events about unrelated files cost a few reads and nothing else.
      const watcher = watch(dir, { persistent: false }, () => this.#schedule());
      watcher.on('error', (err) =>
        this.#report(dir, new TlsConfigError(`tls: watching ${dir} failed: ${err.message}`, { cause: err })),
      );
      this.#watchers.push(watcher);
    }
    return this;
  }

  close(): void {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#servers.clear();
  }

  /**
   * Re-reads every file; pairs whose bytes changed and that pass the load checks replace the old ones,
   * the others keep serving their previous certificate (and are reported to onError). New handshakes use
   * the new contexts; established connections keep the one they were made with. Returns whether anything changed.
   */
  reload(): boolean {
    const next = this.#pairs.slice();
    const changed: number[] = [];
    this.#config.certificates.forEach((pair, i) => {
      const old = this.#pairs[i]!;
      if (sameBytes(old.certFile, old.certPem) && sameBytes(old.keyFile, old.keyPem)) return this.#clear(old.certFile);
      try {
        next[i] = loadPair(i, pair, this.#baseDir);
        changed.push(i);
        this.#clear(old.certFile);
      } catch (err) {
        this.#report(old.certFile, err);
      }
    });
    let ca = this.#ca;
    const oldCa = this.#ca;
    if (oldCa !== undefined && !sameBytes(oldCa.file, oldCa.pem)) {
      try {
        ca = this.#loadCa();
        this.#clear(oldCa.file);
      } catch (err) {
        this.#report(oldCa.file, err);
      }
    } else if (oldCa !== undefined) {
      this.#clear(oldCa.file);
    }
    const caChanged = ca !== this.#ca;
    if (changed.length === 0 && !caChanged) return false;
    let contexts: SecureContext[];
    try {
      contexts = this.#buildContexts(next, ca);
    } catch (err) {
      this.#report('contexts', err);
      return false;
    }
    this.#clear('contexts');
    this.#pairs = next;
    this.#ca = ca;
    this.#contexts = contexts;
    this.#rebuildIndex(false);
    for (const server of this.#servers) server.setSecureContext(this.#contextOptions(next[0]!, ca));
    this.onReload?.({ changed, caChanged });
    return true;
  }

  #contextOptions(pair: LoadedPair, ca: CaBundle | undefined): SecureContextOptions {
    return {
      key: pair.keyPem,
      cert: pair.certPem, // the whole file: leaf first, then any intermediates
      ...(ca !== undefined ? { ca: ca.pem } : {}),
      minVersion: this.#minVersion,
      maxVersion: this.#maxVersion,
      ...(this.#config.ciphers !== undefined ? { ciphers: this.#config.ciphers } : {}),
      honorCipherOrder: true,
      // Client-initiated renegotiation (TLS 1.2) makes us redo the handshake's key work on demand: a CPU
      // exhaustion vector, refused with an alert before any work. (TLSSocket.disableRenegotiation() only errors
      // after the renegotiation handshake has run.)
      secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
      sessionIdContext: SESSION_ID_CONTEXT,
    };
  }

  #buildContexts(pairs: readonly LoadedPair[], ca: CaBundle | undefined): SecureContext[] {
    return pairs.map((pair, i) => {
      try {
        return createSecureContext(this.#contextOptions(pair, ca));
      } catch (err) {
        // Typically a cipher string that leaves nothing usable, or nothing for this certificate's key type.
        throw new TlsConfigError(
          `tls.certificates[${i}] ${pair.certFile}: cannot build a TLS context (${(err as Error).message}); check tls.ciphers and the versions`,
          { cause: err },
        );
      }
    });
  }

  #loadCa(): CaBundle | undefined {
    const auth = this.#config.clientAuth;
    if (auth === undefined || auth.mode === 'off') return undefined;
    if (auth.ca === undefined)
      throw new TlsConfigError(`tls.clientAuth.ca: required when clientAuth.mode is ${auth.mode}`);
    const file = resolvePath(this.#baseDir, auth.ca);
    const pem = readConfigFile('tls.clientAuth.ca', auth.ca, file);
    parseCertificates('tls.clientAuth.ca', describePath(auth.ca, file), pem);
    return { file, pem };
  }

  // First certificate listing a name wins, as in the config order.
  #rebuildIndex(warn: boolean): void {
    const exact = new Map<string, number>();
    const wildcard = new Map<string, number>();
    this.#pairs.forEach((pair, i) => {
      for (const name of pair.names) {
        const isWild = name.startsWith('*.') && !name.slice(2).includes('*');
        if (!isWild && name.includes('*')) continue; // partial wildcards (f*.example.com): not served by SNI
        const map = isWild ? wildcard : exact;
        const key = isWild ? name.slice(2) : name;
        const first = map.get(key);
        if (first === undefined) map.set(key, i);
        else if (warn && first !== i)
          this.warnings.push(
            `tls.certificates[${i}]: ${name} is also in tls.certificates[${first}], which is used for it`,
          );
      }
    });
    this.#exact = exact;
    this.#wildcard = wildcard;
  }

  #files(): string[] {
    const files = this.#pairs.flatMap((p) => [p.certFile, p.keyFile]);
    if (this.#ca !== undefined) files.push(this.#ca.file);
    return files;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.reload();
    }, this.#debounceMs);
    this.#timer.unref();
  }

  #report(key: string, thrown: unknown): void {
    const err =
      thrown instanceof TlsConfigError
        ? thrown
        : new TlsConfigError(`tls: ${String((thrown as Error)?.message ?? thrown)}`, { cause: thrown });
    if (this.#lastErrors.get(key) === err.message) return;
    this.#lastErrors.set(key, err.message);
    this.onError?.(err);
  }

  #clear(key: string): void {
    this.#lastErrors.delete(key);
  }
}

function sameBytes(file: string, bytes: Buffer): boolean {
  try {
    return readFileSync(file).equals(bytes);
  } catch {
    return false; // unreadable now: loadPair reports it
  }
}
