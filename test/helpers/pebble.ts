// Debian's pebble (a real ACME server, RFC 8555) and pebble-challtestsrv as its DNS, for the ACME tests: its TLS
// certificate made with openssl at test time (test/helpers/certs.ts), its ports picked free, every name resolving to
// 127.0.0.1, and validations aimed at the gateway's own http and https ports. stop() kills both and cleans up.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { join } from 'node:path';
import { TestPki } from './certs.ts';
import { freePort } from './ports.ts';

export interface PebbleOptions {
  /** The port pebble's VA sends http-01 validations to (the gateway's http listener). */
  readonly httpPort: number;
  /** The port of tls-alpn-01 validations (the gateway's https listener). */
  readonly tlsPort: number;
  /** Seconds a certificate is valid (pebble's default: about five years). */
  readonly validitySeconds?: number;
  /** External account binding keys (then required): kid → base64url HMAC key. */
  readonly eab?: Record<string, string>;
}

export interface Pebble {
  /** https://localhost:PORT/dir */
  readonly directory: string;
  /** PEM file of the CA that signed pebble's own TLS certificate (acme.ca). */
  readonly caFile: string;
  readonly caPem: string;
  /** The challenge test server's management API (set-txt, clear-txt for dns-01). */
  readonly challtestsrv: string;
  /** Orders pebble logged ("Issued certificate ..." lines) so far. */
  issued(): number;
  /** PEM of pebble's current issuing root and intermediate (management API), fetched now. */
  root(): Promise<string>;
  intermediate(): Promise<string>;
  stop(): Promise<void>;
}

function started(child: ChildProcess, marker: RegExp, name: string, output: { text: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${name} exited (${code}): ${output.text}`));
    child.once('exit', onExit);
    const onData = (s: string) => {
      output.text += s;
      if (marker.test(output.text)) {
        child.off('exit', onExit);
        resolve();
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
  });
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const pki = new TestPki();
  const ca = pki.ca('Pebble Test TLS CA', 'pebble-ca');
  const tls = pki.server(ca, { names: ['localhost'], file: 'pebble' });
  // Four ports, none of them the gateway's (which are not bound yet: freePort could hand them out again).
  const taken = new Set([options.httpPort, options.tlsPort]);
  while (taken.size < 6) taken.add(await freePort());
  const [listen, management, dns, challMgmt] = [...taken].slice(2) as [number, number, number, number];
  const config = join(pki.dir, 'pebble-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: tls.certPath,
        privateKey: tls.keyPath,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab !== undefined ? { externalAccountMACKeys: options.eab } : {}),
        ...(options.validitySeconds !== undefined ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    }),
  );
  const chall = spawn(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dns}`,
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${challMgmt}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const challOut = { text: '' };
  await started(chall, /Starting management server/, 'pebble-challtestsrv', challOut);
  const pebbleOut = { text: '' };
  const pebble = spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dns}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_VA_ALWAYS_VALID: '0',
      // Every order is validated (no reuse of an earlier valid authorization), and no nonce is refused at random.
      PEBBLE_AUTHZREUSE: '0',
      PEBBLE_WFE_NONCEREJECT: '0',
    },
  });
  await started(pebble, /Listening on: /, 'pebble', pebbleOut);
  const agent = new Agent({ ca: ca.cert });
  const fetchPem = (path: string) =>
    new Promise<string>((resolve, reject) => {
      get(`https://localhost:${management}${path}`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => (body += s));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: ${res.statusCode}`))));
      }).on('error', reject);
    });
  const stopChild = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  };
  return {
    directory: `https://localhost:${listen}/dir`,
    caFile: ca.certPath,
    caPem: ca.cert,
    challtestsrv: `http://127.0.0.1:${challMgmt}`,
    issued: () => (pebbleOut.text.match(/Issued certificate serial/g) ?? []).length,
    root: () => fetchPem('/roots/0'),
    intermediate: () => fetchPem('/intermediates/0'),
    async stop() {
      agent.destroy();
      await Promise.all([stopChild(pebble), stopChild(chall)]);
      pki.remove();
    },
  };
}
