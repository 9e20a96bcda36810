// The load-time checks of TLS files as a list: every problem of a listener's or an upstream's certificates,
// keys and CAs, each at its key (relative to the `tls` map), without throwing. `validate` and `start` run
// these before anything binds; the certificate store's own checks (the same functions) stay for reloads.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import {
  checkVersions,
  describePath,
  parseCertificates,
  parsePrivateKey,
  readConfigFile,
  resolvePath,
  type TlsConfig,
} from './tls-options.ts';

export interface TlsFileProblem {
  /** Key path inside the `tls` map: `['certificates', 0, 'key']`. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Runs `fn`; its error message (a TlsConfigError's, without the label it was given) on failure. */
function attempt<T>(fn: () => T): { value: T } | { problem: string } {
  try {
    return { value: fn() };
  } catch (err) {
    return { problem: (err as Error).message.trim() };
  }
}

/** Reads a PEM bundle of certificates: the leaf (first) and the bytes, or the problem. */
function readCertificates(
  given: string,
  baseDir: string,
): { pem: Buffer; leaf: X509Certificate } | { problem: string } {
  const file = resolvePath(baseDir, given);
  const read = attempt(() => readConfigFile('', given, file));
  if ('problem' in read) return read;
  const parsed = attempt(() => parseCertificates('', describePath(given, file), read.value));
  return 'problem' in parsed ? parsed : { pem: read.value, leaf: parsed.value[0]! };
}

function readKey(given: string, baseDir: string): { pem: Buffer; key: KeyObject } | { problem: string } {
  const file = resolvePath(baseDir, given);
  const read = attempt(() => readConfigFile('', given, file));
  if ('problem' in read) return read;
  const parsed = attempt(() => parsePrivateKey('', describePath(given, file), read.value));
  return 'problem' in parsed ? parsed : { pem: read.value, key: parsed.value };
}

/** A certificate and its key: both readable, PEM, and the key the certificate's; problems at `at.cert` and `at.key`. */
function checkPair(
  cert: string,
  key: string,
  baseDir: string,
  at: { cert: (string | number)[]; key: (string | number)[] },
  problems: TlsFileProblem[],
): { certPem: Buffer; keyPem: Buffer } | undefined {
  const c = readCertificates(cert, baseDir);
  const k = readKey(key, baseDir);
  if ('problem' in c) problems.push({ path: at.cert, message: c.problem });
  if ('problem' in k) problems.push({ path: at.key, message: k.problem });
  if ('problem' in c || 'problem' in k) return undefined;
  if (!c.leaf.checkPrivateKey(k.key)) {
    problems.push({
      path: at.key,
      message: `${describePath(key, resolvePath(baseDir, key))}: the key does not match the certificate ${describePath(cert, resolvePath(baseDir, cert))}`,
    });
    return undefined;
  }
  return { certPem: c.pem, keyPem: k.pem };
}

/**
 * A listener's `tls`: every certificate pair, the versions, the cipher list against each pair, the client CA.
 * `readFiles: false` (`validate --no-files`) checks the versions alone.
 */
export function checkListenerTlsFiles(config: TlsConfig, baseDir: string, readFiles = true): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  const versions = attempt(() => checkVersions(config));
  if ('problem' in versions) problems.push({ path: ['minVersion'], message: versions.problem.replace(/^tls\./, '') });
  if (!readFiles) return problems;
  config.certificates.forEach((pair, i) => {
    const loaded = checkPair(
      pair.cert,
      pair.key,
      baseDir,
      { cert: ['certificates', i, 'cert'], key: ['certificates', i, 'key'] },
      problems,
    );
    if (loaded === undefined || 'problem' in versions) return;
    // What the certificate store builds per pair: a cipher list leaving nothing for this key type fails here.
    const context = attempt(() =>
      createSecureContext({
        cert: loaded.certPem,
        key: loaded.keyPem,
        minVersion: versions.value.minVersion,
        maxVersion: versions.value.maxVersion,
        ...(config.ciphers !== undefined ? { ciphers: config.ciphers } : {}),
      }),
    );
    if ('problem' in context) {
      problems.push({
        path: ['ciphers'],
        message: `no TLS context can be built for certificates[${i}] with these ciphers and versions (${context.problem})`,
      });
    }
  });
  const auth = config.clientAuth;
  if (auth !== undefined && auth.mode !== 'off' && auth.ca !== undefined) {
    const ca = readCertificates(auth.ca, baseDir);
    if ('problem' in ca) problems.push({ path: ['clientAuth', 'ca'], message: ca.problem });
  }
  return problems;
}

/** An upstream's `tls`: the CA bundle, and the client certificate with its key. */
export function checkUpstreamTlsFiles(
  config: { ca?: string; cert?: string; key?: string },
  baseDir: string,
): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  if (config.ca !== undefined) {
    const ca = readCertificates(config.ca, baseDir);
    if ('problem' in ca) problems.push({ path: ['ca'], message: ca.problem });
  }
  if (config.cert !== undefined && config.key !== undefined) {
    checkPair(config.cert, config.key, baseDir, { cert: ['cert'], key: ['key'] }, problems);
  }
  return problems;
}
