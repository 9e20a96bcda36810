// TLS settings of a listener and the load-time checks of its certificate files. Every problem found here is
// a TlsConfigError (code TP_TLS_CONFIG) whose message names the file, so the runtime can print it as a
// config problem. Reading is synchronous: it happens at config load and on a (debounced) file change.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { SecureVersion } from 'node:tls';

export type ClientAuthMode = 'off' | 'optional' | 'require';

export interface CertificatePairConfig {
  readonly cert: string;
  readonly key: string;
}

export interface ClientAuthConfig {
  readonly mode: ClientAuthMode;
  /** PEM bundle of the CAs that sign client certificates; required unless mode is off. */
  readonly ca?: string;
  /** Request header that carries the verified client identity upstream (see client-auth.ts for the format). */
  readonly forwardHeader?: string;
}

export interface TlsConfig {
  readonly certificates: readonly CertificatePairConfig[];
  readonly minVersion?: SecureVersion;
  readonly maxVersion?: SecureVersion;
  /** OpenSSL cipher string; TLS 1.3 suite names (TLS_AES_...) may be mixed in, as Node allows. */
  readonly ciphers?: string;
  readonly clientAuth?: ClientAuthConfig;
}

export class TlsConfigError extends Error {
  readonly code = 'TP_TLS_CONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TlsConfigError';
  }
}

const VERSION_ORDER: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Checks the version range; TLS 1.0 and 1.1 are refused outright (RFC 8996 deprecates them). */
export function checkVersions(config: TlsConfig): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const minVersion = config.minVersion ?? 'TLSv1.2';
  const maxVersion = config.maxVersion ?? 'TLSv1.3';
  for (const [key, v] of [
    ['minVersion', minVersion],
    ['maxVersion', maxVersion],
  ] as const) {
    if (!VERSION_ORDER.includes(v))
      throw new TlsConfigError(`tls.${key}: unknown version ${v} (expected TLSv1.2 or TLSv1.3)`);
    if (VERSION_ORDER.indexOf(v) < 2)
      throw new TlsConfigError(`tls.${key}: ${v} is obsolete (RFC 8996); use TLSv1.2 or TLSv1.3`);
  }
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
    throw new TlsConfigError(`tls.minVersion ${minVersion} is above tls.maxVersion ${maxVersion}`);
  }
  return { minVersion, maxVersion };
}

/** `path` as written in the config, and its absolute form when they differ: what error messages show. */
export function describePath(given: string, absolute: string): string {
  return given === absolute ? given : `${given} (${absolute})`;
}

export function resolvePath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Reads a whole file, or throws a TlsConfigError naming it. */
export function readConfigFile(label: string, given: string, absolute: string): Buffer {
  try {
    return readFileSync(absolute);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new TlsConfigError(`${label} ${describePath(given, absolute)}: ${reason}`, { cause: err });
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle, leaf first; throws when there is none or one does not parse. */
export function parseCertificates(label: string, where: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT);
  if (!blocks)
    throw new TlsConfigError(`${label} ${where}: not a PEM certificate (no -----BEGIN CERTIFICATE----- block)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsConfigError(`${label} ${where}: certificate #${i + 1} does not parse (${(err as Error).message})`, {
        cause: err,
      });
    }
  });
}

export function parsePrivateKey(label: string, where: string, pem: Buffer): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
    throw new TlsConfigError(`${label} ${where}: not a PEM private key (no -----BEGIN ... PRIVATE KEY----- block)`);
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason =
      /passphrase/i.test(e.message) || e.code === 'ERR_MISSING_PASSPHRASE'
        ? 'the key is encrypted; give an unencrypted key'
        : `the key does not parse (${e.message})`;
    throw new TlsConfigError(`${label} ${where}: ${reason}`, { cause: err });
  }
}

/**
 * The DNS names a certificate serves, lowercased: its subjectAltName DNS entries, or its subject CN when
 * it has no DNS SAN at all (legacy certificates; RFC 6125 §6.4.4).
 */
export function certificateNames(x509: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of splitAltNames(x509.subjectAltName ?? '')) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
  }
  if (names.length > 0) return names;
  for (const line of x509.subject.split('\n')) {
    if (line.startsWith('CN=')) names.push(line.slice(3).toLowerCase());
  }
  return names;
}

// Node prints `DNS:a, DNS:b`; a name with a comma or quote in it is JSON-quoted (`DNS:"a,b"`).
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  const re = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null || m[0].length === 0) {
      const next = text.indexOf(', ', pos); // unexpected shape: skip this entry, keep the others
      if (next < 0) break;
      pos = next + 2;
      continue;
    }
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    out.push(`${m[1]}:${value}`);
    pos = re.lastIndex;
  }
  return out;
}

/** A validated certificate/key pair, with the bytes it was read from (to tell a real change from a touch). */
export interface LoadedPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  readonly leaf: X509Certificate;
  readonly names: readonly string[];
}

/** Loads and checks one pair: both files readable, the cert file PEM, the key the one of the leaf. */
export function loadPair(index: number, pair: CertificatePairConfig, baseDir: string): LoadedPair {
  const certFile = resolvePath(baseDir, pair.cert);
  const keyFile = resolvePath(baseDir, pair.key);
  const certLabel = `tls.certificates[${index}].cert`;
  const keyLabel = `tls.certificates[${index}].key`;
  const certPem = readConfigFile(certLabel, pair.cert, certFile);
  const keyPem = readConfigFile(keyLabel, pair.key, keyFile);
  const leaf = parseCertificates(certLabel, describePath(pair.cert, certFile), certPem)[0]!;
  const key = parsePrivateKey(keyLabel, describePath(pair.key, keyFile), keyPem);
  if (!leaf.checkPrivateKey(key)) {
    throw new TlsConfigError(
      `${keyLabel} ${describePath(pair.key, keyFile)}: the key does not match the certificate ${describePath(pair.cert, certFile)}`,
    );
  }
  const names = certificateNames(leaf);
  return { certFile, keyFile, certPem, keyPem, leaf, names };
}

/** Non-fatal findings worth a load-time warning: expiry and certificates that serve no DNS name. */
export function pairWarnings(index: number, pair: LoadedPair, now = Date.now()): string[] {
  const warnings: string[] = [];
  const where = `tls.certificates[${index}] ${pair.certFile}`;
  if (Date.parse(pair.leaf.validTo) < now) warnings.push(`${where}: certificate expired on ${pair.leaf.validTo}`);
  if (Date.parse(pair.leaf.validFrom) > now)
    warnings.push(`${where}: certificate is not valid before ${pair.leaf.validFrom}`);
  if (pair.names.length === 0)
    warnings.push(
      `${where}: certificate names no DNS host (no DNS subjectAltName, no CN); only clients without SNI get it, as the default`,
    );
  return warnings;
}
