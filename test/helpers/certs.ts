// Certificates made at test time with the openssl CLI, into a temp dir: CAs, server certificates for given
// DNS names (wildcards included), client certificates. EC P-256 keys unless asked otherwise (instant to make).
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OPENSSL = 'openssl'; // on PATH; `npm test` installs it

export interface Issued {
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM text of the certificate and of its unencrypted private key. */
  readonly cert: string;
  readonly key: string;
  /** As X509Certificate.serialNumber prints it (uppercase hex). */
  readonly serial: string;
}

export interface Ca extends Issued {
  readonly name: string;
}

export interface ServerCertOptions {
  /** subjectAltName DNS entries ('*.b.example.com' allowed); empty = no SAN at all (then `cn` names the host). */
  readonly names: readonly string[];
  readonly cn?: string;
  /** Base name of the files: `<file>.pem` and `<file>-key.pem` (default: from the first name or the CN). */
  readonly file?: string;
  readonly keyType?: 'ec' | 'rsa';
}

export interface ClientCertOptions {
  readonly cn: string;
  readonly o?: string;
  readonly file?: string;
}

const CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

/** `/CN=a/O=b` for openssl -subj (slashes in values escaped). */
function subj(parts: Record<string, string | undefined>): string {
  return Object.entries(parts)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `/${k}=${v!.replaceAll('/', '\\/')}`)
    .join('');
}

export class TestPki {
  readonly dir: string;
  readonly #config: string;

  constructor(dir = mkdtempSync(join(tmpdir(), 'turnpike-certs-'))) {
    this.dir = dir;
    this.#config = join(dir, 'openssl.cnf');
    writeFileSync(this.#config, CONFIG);
  }

  /** A self-signed CA. */
  ca(name: string, file = name.toLowerCase().replace(/[^a-z0-9]+/g, '-')): Ca {
    return { name, ...this.#issue(file, 'ca_ext', subj({ CN: name }), [], 'ec') };
  }

  /** A server certificate signed by `ca`. */
  server(ca: Ca, options: ServerCertOptions): Issued {
    const first = options.names[0] ?? options.cn ?? 'server';
    const file = options.file ?? first.replace('*', 'wildcard').replace(/[^a-zA-Z0-9.-]+/g, '-');
    const san =
      options.names.length > 0 ? ['-addext', `subjectAltName=${options.names.map((n) => `DNS:${n}`).join(',')}`] : [];
    return this.#issue(
      file,
      'server_ext',
      subj({ CN: options.cn ?? first }),
      [...san, '-CA', ca.certPath, '-CAkey', ca.keyPath],
      options.keyType ?? 'ec',
    );
  }

  /** A client certificate signed by `ca` (subject written O first, CN last, as usual). */
  client(ca: Ca, options: ClientCertOptions): Issued {
    const file = options.file ?? `client-${options.cn.replace(/[^a-zA-Z0-9.-]+/g, '-')}`;
    return this.#issue(
      file,
      'client_ext',
      subj({ O: options.o, CN: options.cn }),
      ['-CA', ca.certPath, '-CAkey', ca.keyPath],
      'ec',
    );
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  #issue(file: string, extensions: string, subject: string, extra: string[], keyType: 'ec' | 'rsa'): Issued {
    const certPath = join(this.dir, `${file}.pem`);
    const keyPath = join(this.dir, `${file}-key.pem`);
    const newkey =
      keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
    // A random positive 127-bit serial, so every certificate of a run is distinguishable.
    const serial = `0x${(randomBytes(16)[0]! & 0x7f).toString(16).padStart(2, '0')}${randomBytes(15).toString('hex')}`;
    execFileSync(
      OPENSSL,
      [
        'req',
        '-x509',
        '-new',
        ...newkey,
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-subj',
        subject,
        '-days',
        '2',
        '-set_serial',
        serial,
        '-config',
        this.#config,
        '-extensions',
        extensions,
        ...extra,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const cert = readFileSync(certPath, 'utf8');
    return {
      certPath,
      keyPath,
      cert,
      key: readFileSync(keyPath, 'utf8'),
      serial: new X509Certificate(cert).serialNumber,
    };
  }
}

/** The usual set: a server CA, a client CA, and a client certificate signed by the client CA. */
export function makeTestPki(): { pki: TestPki; serverCa: Ca; clientCa: Ca; client: Issued } {
  const pki = new TestPki();
  const serverCa = pki.ca('Turnpike Test Server CA', 'server-ca');
  const clientCa = pki.ca('Turnpike Test Clients CA', 'clients-ca');
  const client = pki.client(clientCa, { cn: 'alice', o: 'Acme, Inc.' });
  return { pki, serverCa, clientCa, client };
}
