// L01 (Mozilla "intermediate"): TLS 1.0, 1.1 and SSLv3 are refused, TLS 1.2 and 1.3 are offered. Reproduced with
// `openssl s_client -tls1 / -tls1_1 / -tls1_2 / -tls1_3` (testssl.sh and sslscan are not on these machines). OpenSSL
// 3 will not offer TLS 1.0/1.1 at its default security level, so the client runs with DEFAULT@SECLEVEL=0 and is
// first shown to get TLS 1.0/1.1 from a control server that accepts them: a refusal from the gateway is then the
// gateway's. OpenSSL 3 cannot speak SSLv3 at all (no -ssl3), so SSLv3 and SSLv2-compatible ClientHellos are
// written by hand: the gateway must answer them with an alert or a close, never a ServerHello.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { makeTestPki, type TestPki } from '../helpers/certs.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;
let pki: TestPki;
let control: tls.Server;
let controlPort: number;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
  ({ pki } = makeTestPki());
  const ca = pki.ca('Control CA', 'control-ca');
  const cert = pki.server(ca, { names: ['localhost'] });
  // The control: accepts every version and suite OpenSSL still has.
  control = tls.createServer({ key: cert.key, cert: cert.cert, minVersion: 'TLSv1', ciphers: 'ALL:@SECLEVEL=0' }, (s) =>
    s.end(),
  );
  control.on('tlsClientError', () => {});
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  controlPort = (control.address() as net.AddressInfo).port;
});
after(async () => {
  control.close();
  await gw.stop();
  await backend.close();
  pki.remove();
});

/** `openssl s_client` with one protocol flag; the version it negotiated, or null when the handshake failed. */
function sClient(port: number, flag: string): Promise<{ version: string | null; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', flag, '-cipher', 'DEFAULT@SECLEVEL=0'],
      { timeout: 10_000 },
      (_err, stdout, stderr) => {
        const output = stdout + stderr;
        // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" after a handshake, "New, (NONE), Cipher is (NONE)" without;
        // that version is the cipher's, so the session's "Protocol  : TLSv1.1" wins where printed (TLS ≤ 1.2).
        const m = /^New, (\S+), Cipher is (\S+)/m.exec(output);
        const protocol = /^\s*Protocol\s*:\s*(\S+)/m.exec(output)?.[1];
        resolve({ version: m && m[2] !== '(NONE)' ? (protocol ?? m[1]!) : null, output });
      },
    );
    child.stdin!.end();
  });
}

test('the client really offers TLS 1.0 and 1.1 (a control server that accepts them gets them)', async () => {
  assert.equal((await sClient(controlPort, '-tls1')).version, 'TLSv1');
  assert.equal((await sClient(controlPort, '-tls1_1')).version, 'TLSv1.1');
});

test('TLS 1.0 and TLS 1.1 are refused with a protocol_version alert', async () => {
  for (const flag of ['-tls1', '-tls1_1']) {
    const r = await sClient(gw.https, flag);
    assert.equal(r.version, null, r.output);
    assert.match(r.output, /alert protocol version|unsupported protocol|no protocols available/i, r.output);
  }
});

test('TLS 1.2 and TLS 1.3 are offered', async () => {
  assert.equal((await sClient(gw.https, '-tls1_2')).version, 'TLSv1.2');
  assert.equal((await sClient(gw.https, '-tls1_3')).version, 'TLSv1.3');
});

/** Writes `hello` and reads what the server answers until it closes (or 64 KiB). */
function answerTo(hello: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(gw.https, '127.0.0.1', () => s.write(hello));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** An SSLv3 (or, with `version` 0x0301, a TLS 1.0) ClientHello record offering classic RSA/3DES/RC4 suites. */
function classicHello(version: number): Buffer {
  const suites = [0x000a, 0x0005, 0x0004, 0x002f, 0x0035]; // DES-CBC3-SHA, RC4-SHA, RC4-MD5, AES128-SHA, AES256-SHA
  const body = Buffer.concat([
    Buffer.from([version >> 8, version & 0xff]),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // no session id
    Buffer.from([0, suites.length * 2]),
    Buffer.from(suites.flatMap((s) => [s >> 8, s & 0xff])),
    Buffer.from([1, 0]), // compression: null
  ]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, version >> 8, version & 0xff, 0, handshake.length]), handshake]);
}

/** An SSLv2-compatible ClientHello (the old "SSLv23" opening), asking for SSLv3. */
function sslv2Hello(): Buffer {
  const specs = Buffer.from([0x00, 0x00, 0x0a, 0x01, 0x00, 0x80, 0x07, 0x00, 0xc0]);
  const challenge = Buffer.alloc(16, 9);
  const body = Buffer.concat([Buffer.from([1, 3, 0, 0, specs.length, 0, 0, 0, challenge.length]), specs, challenge]);
  return Buffer.concat([Buffer.from([0x80 | (body.length >> 8), body.length & 0xff]), body]);
}

test('an SSLv3 ClientHello (and an SSLv2-compatible one) gets an alert or a close, never a ServerHello', async () => {
  for (const [name, hello] of [
    ['SSLv3', classicHello(0x0300)],
    ['TLS 1.0 with RC4/3DES only', classicHello(0x0301)],
    ['SSLv2-compatible', sslv2Hello()],
  ] as const) {
    const answer = await answerTo(hello);
    // Content type 22 (handshake) would be a ServerHello; 21 is an alert; nothing at all is a close.
    assert.ok(answer.length === 0 || answer[0] === 21, `${name}: answered ${answer.subarray(0, 16).toString('hex')}`);
  }
  assert.equal(backend.arrivals.length, 0);
});
