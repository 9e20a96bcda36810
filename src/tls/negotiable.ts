// What a client can actually negotiate with a TLS configuration, found by trying: one in-memory handshake
// per protocol version and per cipher suite this OpenSSL knows, each client offering exactly one thing.
// Asking OpenSSL beats re-deriving its rules (cipher strings, security levels, key types, version floors).
import { duplexPair } from 'node:stream';
import {
  connect,
  createSecureContext,
  getCiphers,
  TLSSocket,
  type ConnectionOptions,
  type SecureContext,
  type SecureContextOptions,
  type SecureVersion,
} from 'node:tls';

export interface NegotiableCipher {
  readonly version: SecureVersion;
  /** OpenSSL name, e.g. ECDHE-RSA-AES128-GCM-SHA256 or TLS_AES_128_GCM_SHA256. */
  readonly name: string;
  /** IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256. */
  readonly standardName: string;
}

export interface Negotiable {
  readonly versions: readonly SecureVersion[];
  readonly ciphers: readonly NegotiableCipher[];
}

const VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
// The probing client accepts anything, old versions included, so the answer reflects the server alone.
const ANY = ':@SECLEVEL=0';

interface Outcome {
  readonly version: SecureVersion;
  readonly name: string;
  readonly standardName: string;
}

function handshake(server: SecureContext, client: ConnectionOptions): Promise<Outcome | null> {
  return new Promise((resolve) => {
    const [serverSide, clientSide] = duplexPair();
    let cli: TLSSocket;
    try {
      cli = connect({ ...client, socket: clientSide, rejectUnauthorized: false, servername: '' });
    } catch {
      resolve(null); // a cipher name this build cannot set
      return;
    }
    const srv = new TLSSocket(serverSide, { isServer: true, secureContext: server });
    let settled = false;
    const done = (outcome: Outcome | null): void => {
      if (settled) return;
      settled = true;
      cli.destroy();
      srv.destroy();
      resolve(outcome);
    };
    srv.on('error', () => done(null));
    cli.on('error', () => done(null));
    cli.on('close', () => done(null));
    cli.once('secureConnect', () => {
      const cipher = cli.getCipher();
      done({ version: cli.getProtocol() as SecureVersion, name: cipher.name, standardName: cipher.standardName });
    });
  });
}

/** Probes the context these options build (as a server without client certificates). */
export async function describeNegotiable(options: SecureContextOptions): Promise<Negotiable> {
  const server = createSecureContext(options);
  const versions: SecureVersion[] = [];
  for (const v of VERSIONS) {
    const legacy = v === 'TLSv1.3' ? {} : { ciphers: `ALL${ANY}` };
    if (await handshake(server, { minVersion: v, maxVersion: v, ...legacy })) versions.push(v);
  }
  const ciphers: NegotiableCipher[] = [];
  const tls13 = versions.includes('TLSv1.3');
  const tls12 = versions.filter((v) => v !== 'TLSv1.3');
  for (const lower of getCiphers()) {
    const name = lower.toUpperCase();
    const isTls13Suite = name.startsWith('TLS_');
    if (isTls13Suite ? !tls13 : tls12.length === 0) continue;
    const client: ConnectionOptions = isTls13Suite
      ? { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: name }
      : { minVersion: tls12[0]!, maxVersion: tls12.at(-1)!, ciphers: `${name}${ANY}` };
    const outcome = await handshake(server, client);
    if (outcome !== null) ciphers.push(outcome);
  }
  // TLS 1.3 first, then by name, so the note reads the same from one run to the next.
  ciphers.sort((a, b) => b.version.localeCompare(a.version) || a.name.localeCompare(b.name));
  return { versions, ciphers };
}
