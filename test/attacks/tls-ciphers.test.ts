// L02 (testssl.sh -E -s -f -U, sslscan): weak ciphers and downgrades, reproduced by hand since neither tool is on
// these machines. Every TLS 1.2 suite this OpenSSL knows (`openssl ciphers ALL:COMPLEMENTOFALL`, PSK/SRP left out:
// they need shared secrets) is offered alone, at SECLEVEL=0, first to a control server that accepts them all, then
// to the gateway (an RSA certificate, so RSA key exchange is possible at all): the gateway may accept only ECDHE
// with an AEAD cipher, and must refuse each NULL, anonymous, RSA-key-exchange (no forward secrecy), CBC, RC4, 3DES
// and EXPORT suite the control accepted. (This OpenSSL 3 has no RC4, 3DES or EXPORT suites left: they are refused
// by construction; the test reports which weak classes could really be offered.) Also: no client-initiated
// renegotiation, no TLS compression, TLS_FALLBACK_SCSV honoured.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
let pki: TestPki;
let ca: Ca;
let gateway: number;
let control: tls.Server;
let controlPort: number;
let control12: tls.Server;
let control12Port: number;

async function listen(server: tls.Server): Promise<number> {
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

before(async () => {
  ({ pki, serverCa: ca } = makeTestPki());
  const cert = pki.server(ca, { names: ['localhost'], keyType: 'rsa' });
  backend = await startRecordingBackend();
  gw = await startGatewayYaml(`
listeners:
  - name: secure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app }]
`);
  gateway = gw.port('secure');
  const options = { key: cert.key, cert: cert.cert, ciphers: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' };
  // The controls keep their connections open (the client ends them): a renegotiation needs a live one.
  const keep = (s: tls.TLSSocket) => void s.on('error', () => {}).resume();
  control = tls.createServer({ ...options, minVersion: 'TLSv1' }, keep);
  controlPort = await listen(control);
  control12 = tls.createServer({ ...options, maxVersion: 'TLSv1.2' }, keep);
  control12Port = await listen(control12);
});
after(async () => {
  control.close();
  control12.close();
  await gw.stop();
  await backend.close();
  pki.remove();
});

/** The suite negotiated when only `suite` is offered over TLS 1.2, or null when the handshake fails. */
function negotiate(port: number, suite: string): Promise<string | null> {
  return new Promise((resolve) => {
    let s: tls.TLSSocket;
    try {
      s = tls.connect({
        host: '127.0.0.1',
        port,
        ca: ca.cert,
        servername: 'localhost',
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
        ciphers: `${suite}:@SECLEVEL=0`,
        checkServerIdentity: () => undefined,
        rejectUnauthorized: false, // anonymous suites have no certificate to verify
      });
    } catch {
      return resolve(null); // this client cannot offer it
    }
    s.on('secureConnect', () => {
      resolve(s.getCipher().standardName ? s.getCipher().name : null);
      s.destroy();
    });
    s.on('error', () => resolve(null));
  });
}

const WEAK: ReadonlyArray<readonly [string, RegExp]> = [
  ['NULL encryption', /NULL/],
  ['anonymous (aNULL)', /^(ADH|AECDH)-/],
  ['RSA key exchange (no forward secrecy)', /^(AES|CAMELLIA|ARIA|SEED|IDEA|DES|RC4|NULL)[-\w]*$/],
  ['CBC mode', /-SHA(256|384)?$/],
  ['RC4', /RC4/],
  ['3DES', /DES-CBC3|3DES/],
  ['EXPORT', /EXP/],
];

test('of every TLS 1.2 suite, the gateway accepts only ECDHE with AES-GCM or ChaCha20-Poly1305', async () => {
  const suites = execFileSync('openssl', ['ciphers', '-tls1_2', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], {
    encoding: 'utf8',
  })
    .trim()
    .split(':')
    .filter((name) => !/PSK|SRP|^TLS_/.test(name));
  const offered: string[] = [];
  const accepted: string[] = [];
  for (const suite of suites) {
    if ((await negotiate(controlPort, suite)) === null) continue; // not offerable here
    offered.push(suite);
    if ((await negotiate(gateway, suite)) !== null) accepted.push(suite);
  }
  assert.ok(offered.length >= 20, `only ${offered.length} suites could be offered: ${offered.join(' ')}`);
  assert.ok(accepted.length > 0, 'the gateway accepted no TLS 1.2 suite at all');
  for (const suite of accepted) assert.match(suite, /^ECDHE-(RSA|ECDSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
  const classes = WEAK.map(([name, re]) => `${name}: ${offered.filter((s) => re.test(s)).length} offered`);
  console.log(`# L02: ${offered.length} suites offered, gateway accepted ${accepted.join(' ')}; ${classes.join('; ')}`);
  assert.equal(backend.arrivals.length, 0);
});

/** Renegotiates a TLS 1.2 connection from the client's side; resolves with how it went. */
function renegotiate(port: number): Promise<'renegotiated' | 'refused'> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca: ca.cert,
      servername: 'localhost',
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
    });
    s.on('error', () => resolve('refused'));
    s.on('close', () => resolve('refused'));
    s.on('secureConnect', () => {
      // Keep reading so the server's answer to the renegotiation is processed.
      s.resume();
      s.renegotiate({ rejectUnauthorized: false }, (err) => {
        resolve(err ? 'refused' : 'renegotiated');
        s.destroy();
      });
    });
  });
}

test('a client-initiated renegotiation is refused (a control server allows it)', async () => {
  assert.equal(await renegotiate(controlPort), 'renegotiated');
  assert.equal(await renegotiate(gateway), 'refused');
});

function sClient(port: number, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args],
      { timeout: 10_000 },
      (_err, stdout, stderr) => resolve(stdout + stderr),
    );
    child.stdin!.end();
  });
}

test('TLS_FALLBACK_SCSV is honoured: a TLS 1.2 fallback to a TLS 1.3 server gets inappropriate_fallback', async () => {
  // The control speaks at most TLS 1.2, so a 1.2 "fallback" to it is no downgrade and succeeds.
  assert.match(await sClient(control12Port, ['-tls1_2', '-fallback_scsv']), /^New, TLSv1\.2, Cipher is ECDHE/m);
  assert.match(await sClient(gateway, ['-tls1_2', '-fallback_scsv']), /inappropriate fallback/i);
  assert.match(await sClient(gateway, ['-tls1_2']), /^New, TLSv1\.2, Cipher is ECDHE/m);
});

test('no TLS compression is negotiated', async () => {
  const out = await sClient(gateway, ['-tls1_2']);
  assert.match(out, /^Compression: NONE$/m);
});
