// L04 (Envoy XFCC sanitizing; NGINX's 421 for mTLS virtual servers): SNI / Host mismatch on an mTLS listener, no
// SNI, bad client certificates, and a client-sent X-Forwarded-Client-Cert. Turnpike's client authentication is per
// listener, so "an mTLS vhost" is an https listener with tls.clientAuth: there a request whose Host is not the TLS
// server name gets 421 TP_MISDIRECTED_REQUEST (the row's first behaviour; NGINX does the same), a client without a
// certificate the client CA signed and that is in date fails the handshake (the row allows handshake failure or
// 403; require mode fails it, before any request exists), and X-Forwarded-Client-Cert from a client is removed on
// every listener (only a verified certificate speaks upstream, under the header clientAuth.forwardHeader names).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { makeTestPki, type Ca, type Issued, type TestPki } from '../helpers/certs.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
let pki: TestPki;
let serverCa: Ca;
let client: Issued;
let strangerCa: Ca;
let stranger: Issued;
let expired: Issued;
let mtls: number;
let open: number;
let plain: number;

/** A client certificate from `ca` that expired in 2020 (`openssl ca` is what can write past dates). */
function expiredClient(p: TestPki, ca: Ca): Issued {
  const dir = p.dir;
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${dir}/index.txt\nserial = ${dir}/serial\nnew_certs_dir = ${dir}\ndefault_md = sha256\n` +
      `policy = any\nunique_subject = no\n[any]\ncommonName = supplied\n` +
      `[client_ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n`,
  );
  const keyPath = join(dir, 'expired-key.pem');
  const certPath = join(dir, 'expired.pem');
  const csr = join(dir, 'expired.csr');
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath].concat([
      '-out',
      csr,
      '-subj',
      '/CN=mallory',
    ]),
  );
  run(
    ['ca', '-batch', '-config', join(dir, 'ca.cnf'), '-cert', ca.certPath, '-keyfile', ca.keyPath, '-in', csr]
      .concat(['-out', certPath, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z'])
      .concat(['-extensions', 'client_ext', '-extfile', join(dir, 'ca.cnf'), '-notext']),
  );
  const read = (f: string) => execFileSync('cat', [f], { encoding: 'utf8' });
  return { certPath, keyPath, cert: read(certPath), key: read(keyPath), serial: '' };
}

before(async () => {
  const made = makeTestPki();
  pki = made.pki;
  serverCa = made.serverCa;
  client = made.client;
  strangerCa = pki.ca('Someone Else CA', 'stranger-ca');
  stranger = pki.client(strangerCa, { cn: 'alice', file: 'stranger-alice' });
  expired = expiredClient(pki, made.clientCa);
  const a = pki.server(serverCa, { names: ['a.example'] });
  const b = pki.server(serverCa, { names: ['b.example'] });
  backend = await startRecordingBackend();
  gw = await startGatewayYaml(`
listeners:
  - name: mtls
    protocol: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates: [{ cert: "${a.certPath}", key: "${a.keyPath}" }, { cert: "${b.certPath}", key: "${b.keyPath}" }]
      clientAuth: { mode: require, ca: "${made.clientCa.certPath}", forwardHeader: x-client-cert }
  - name: open
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${a.certPath}", key: "${a.keyPath}" }, { cert: "${b.certPath}", key: "${b.keyPath}" }] }
  - { name: plain, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`);
  mtls = gw.port('mtls');
  open = gw.port('open');
  plain = gw.port('plain');
});
after(async () => {
  await gw.stop();
  await backend.close();
  pki.remove();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(
  port: number,
  o: { servername?: string; host: string; cert?: Issued; headers?: Record<string, string>; path?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: o.path ?? '/x',
        agent: false,
        ca: serverCa.cert,
        servername: o.servername,
        // The SNI is under test, not the name the certificate was checked against here.
        checkServerIdentity: () => undefined,
        headers: { host: o.host, ...o.headers },
        ...(o.cert ? { cert: o.cert.cert, key: o.cert.key } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A TLS handshake with a client certificate; resolves with how it ended. */
function handshake(cert: Issued | undefined): Promise<'refused' | 'accepted'> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: mtls,
      servername: 'a.example',
      ca: serverCa.cert,
      maxVersion: 'TLSv1.2', // TLS 1.2: the server's verdict on the certificate comes within the handshake
      ...(cert ? { cert: cert.cert, key: cert.key } : {}),
    });
    s.on('secureConnect', () => {
      s.end();
      resolve('accepted');
    });
    s.on('error', () => resolve('refused'));
  });
}

test('an mTLS request whose Host is not its SNI gets 421 and never reaches the backend', async () => {
  const before = backend.arrivals.length;
  for (const host of ['b.example', `b.example:${mtls}`, 'evil.example']) {
    const r = await get(mtls, { servername: 'a.example', host, cert: client });
    assertProblem(r, 421, 'TP_MISDIRECTED_REQUEST');
  }
  assert.equal(backend.arrivals.length, before);
});

test('an mTLS request whose Host is its SNI (any case, a port, a trailing dot) is served', async () => {
  for (const host of ['a.example', `A.Example:${mtls}`, 'a.example.']) {
    const r = await get(mtls, { servername: 'a.example', host, cert: client });
    assert.equal(r.status, 200, `${host}: ${r.body}`);
  }
});

test('an h2 stream on an mTLS connection for a.example asking :authority b.example gets 421', async () => {
  const session = http2.connect(`https://127.0.0.1:${mtls}`, {
    servername: 'a.example',
    ca: serverCa.cert,
    cert: client.cert,
    key: client.key,
    checkServerIdentity: () => undefined,
  });
  const ask = (authority: string) =>
    new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/x', ':authority': authority });
      let status = 0;
      let type = '';
      let body = '';
      s.on('response', (h) => {
        status = Number(h[':status']);
        type = String(h['content-type']);
      });
      s.setEncoding('utf8');
      s.on('data', (d: string) => (body += d));
      s.on('end', () => resolve({ status, body, type }));
      s.on('error', reject);
    });
  const before = backend.arrivals.length;
  const bad = await ask('b.example');
  assert.equal(bad.status, 421, bad.body);
  assert.equal(JSON.parse(bad.body).code, 'TP_MISDIRECTED_REQUEST');
  assert.equal(backend.arrivals.length, before);
  assert.equal((await ask('a.example')).status, 200);
  session.close();
});

test('a client without SNI gets the default certificate and is still held to the client CA', async () => {
  const served = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: mtls,
      ca: serverCa.cert,
      cert: client.cert,
      key: client.key,
      checkServerIdentity: () => undefined,
    });
    s.on('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!.subjectAltName ?? '');
      s.end();
    });
    s.on('error', reject);
  });
  assert.equal(served, 'DNS:a.example');
  assert.equal(await handshake(undefined), 'refused');
});

test('a client certificate from another CA, an expired one, or none at all fails the handshake', async () => {
  const before = backend.arrivals.length;
  assert.equal(await handshake(client), 'accepted'); // the control: the right certificate passes
  assert.equal(await handshake(stranger), 'refused');
  assert.equal(await handshake(expired), 'refused');
  assert.equal(await handshake(undefined), 'refused');
  await assert.rejects(get(mtls, { servername: 'a.example', host: 'a.example', cert: expired }));
  assert.equal(backend.arrivals.length, before);
});

test('a client-sent X-Forwarded-Client-Cert never reaches the backend, on any listener', async () => {
  const spoof = {
    'x-forwarded-client-cert': 'By=spiffe://evil;Hash=00;Subject="CN=admin"',
    'x-client-cert': 'CN=admin',
  };
  const plainAnswer = await new Promise<Answer>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: plain, path: '/x', headers: spoof }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
  assert.equal(plainAnswer.status, 200);
  const openAnswer = await get(open, { servername: 'a.example', host: 'a.example', headers: spoof });
  assert.equal(openAnswer.status, 200);
  const mtlsAnswer = await get(mtls, { servername: 'a.example', host: 'a.example', cert: client, headers: spoof });
  assert.equal(mtlsAnswer.status, 200);
  const seen = backend.arrivals.slice(-3);
  for (const a of seen) assert.equal(a.headers['x-forwarded-client-cert'], undefined, a.rawHeaders.join('\n'));
  // On the mTLS listener the configured header carries the verified certificate, never the client's value.
  assert.match(
    String(seen[2]!.headers['x-client-cert']),
    /^subject="CN=alice,O=Acme\\\\, Inc\.";fingerprint=sha256:[0-9a-f]{64}$/,
  );
});
