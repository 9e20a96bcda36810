import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import { CertificateStore, type StoreCallbacks } from '../../src/tls/certificate-store.ts';
import { clientIdentity, formatClientCertHeader, type ClientIdentity } from '../../src/tls/client-auth.ts';
import type { TlsConfig } from '../../src/tls/tls-options.ts';
import { makeTestPki, type Ca, type Issued, type TestPki } from '../helpers/certs.ts';

interface Hello {
  authorized: boolean;
  identity: ClientIdentity | null;
  header: string | null;
}

interface Session {
  socket: TLSSocket;
  peer: PeerCertificate;
  hello: Hello;
}

const closers: (() => void)[] = [];

/** A TLS server built from the store: greets each connection with a JSON line (what it knows of the client), then echoes. */
async function serve(
  config: TlsConfig,
  baseDir: string,
  callbacks?: StoreCallbacks,
): Promise<{ store: CertificateStore; port: number }> {
  const store = new CertificateStore(config, baseDir, callbacks);
  const server = createServer(store.secureOptions(), (socket) => {
    const identity = clientIdentity(socket);
    socket.on('error', () => {});
    socket.write(
      `${JSON.stringify({ authorized: socket.authorized, identity, header: identity && formatClientCertHeader(identity) })}\n`,
    );
    socket.pipe(socket);
  });
  store.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => {
    store.close();
    server.close();
  });
  return { store, port: (server.address() as AddressInfo).port };
}

/** Connects and reads the greeting; rejects with the TLS error when the handshake (or the server) refuses. */
function open(port: number, options: ConnectionOptions): Promise<Session> {
  return new Promise((resolve, reject) => {
    // The chain is verified against options.ca; the name is not, as some tests expect the default certificate.
    const socket = connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...options });
    let text = '';
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed before the greeting')));
    socket.on('data', function onData(chunk: Buffer) {
      text += chunk.toString();
      if (!text.includes('\n')) return;
      socket.off('data', onData);
      closers.push(() => socket.destroy());
      resolve({ socket, peer: socket.getPeerCertificate(), hello: JSON.parse(text) as Hello });
    });
  });
}

async function echo(session: Session, text: string): Promise<string> {
  session.socket.write(text);
  const [chunk] = (await once(session.socket, 'data')) as [Buffer];
  return chunk.toString();
}

const relative = (issued: Issued) => ({ cert: basename(issued.certPath), key: basename(issued.keyPath) });

let pki: TestPki;
let serverCa: Ca;
let clientCa: Ca;
let client: Issued;

before(() => {
  ({ pki, serverCa, clientCa, client } = makeTestPki());
});

after(() => {
  for (const close of closers) close();
  pki.remove();
});

describe('SNI certificate selection', () => {
  let port: number;
  let a: Issued, wild: Issued, exactB: Issued, legacy: Issued;
  const sanOf = async (servername: string) => (await open(port, { servername, ca: serverCa.cert })).peer.subjectaltname;

  before(async () => {
    a = pki.server(serverCa, { names: ['a.example.com'] });
    wild = pki.server(serverCa, { names: ['*.b.example.com'] });
    exactB = pki.server(serverCa, { names: ['exact.b.example.com'] });
    legacy = pki.server(serverCa, { names: [], cn: 'legacy.example.com' });
    ({ port } = await serve({ certificates: [a, wild, exactB, legacy].map(relative), minVersion: 'TLSv1.2' }, pki.dir));
  });

  test('a server name listed in a certificate SAN gets that certificate', async () => {
    assert.equal(await sanOf('a.example.com'), 'DNS:a.example.com');
  });

  test('an exact name wins over a wildcard listed earlier', async () => {
    assert.equal(await sanOf('exact.b.example.com'), 'DNS:exact.b.example.com');
  });

  test('a wildcard certificate serves any single label below it, case-insensitively', async () => {
    assert.equal(await sanOf('x.b.example.com'), 'DNS:*.b.example.com');
    assert.equal(await sanOf('Other.B.Example.COM'), 'DNS:*.b.example.com');
  });

  test('a wildcard matches neither the apex nor two labels deep: those get the default', async () => {
    assert.equal(await sanOf('b.example.com'), 'DNS:a.example.com');
    assert.equal(await sanOf('y.x.b.example.com'), 'DNS:a.example.com');
  });

  test('a client without SNI, or with an unknown name, gets the first certificate', async () => {
    const noSni = await open(port, { ca: serverCa.cert }); // an IP host sends no server name
    assert.equal(noSni.peer.serialNumber, a.serial);
    assert.equal(await sanOf('unknown.example.org'), 'DNS:a.example.com');
  });

  test('a certificate without SAN serves the host named by its CN', async () => {
    const session = await open(port, { servername: 'legacy.example.com', ca: serverCa.cert });
    assert.equal(session.peer.serialNumber, legacy.serial);
  });
});

describe('protocol versions and ciphers', () => {
  let site: Issued;
  before(() => {
    site = pki.server(serverCa, { names: ['v.example.com'] });
  });

  test('a TLSv1.1 client is refused under minVersion TLSv1.2, a TLSv1.2 client is accepted', async () => {
    const { port } = await serve({ certificates: [relative(site)], minVersion: 'TLSv1.2' }, pki.dir);
    const old = {
      ca: serverCa.cert,
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    } as const;
    await assert.rejects(open(port, old), /protocol|version/i);
    const ok = await open(port, { ca: serverCa.cert, maxVersion: 'TLSv1.2' });
    assert.equal(ok.socket.getProtocol(), 'TLSv1.2');
  });

  test('minVersion TLSv1.3 refuses a TLSv1.2 client', async () => {
    const { port } = await serve({ certificates: [relative(site)], minVersion: 'TLSv1.3' }, pki.dir);
    await assert.rejects(open(port, { ca: serverCa.cert, maxVersion: 'TLSv1.2' }), /protocol|version/i);
    assert.equal((await open(port, { ca: serverCa.cert })).socket.getProtocol(), 'TLSv1.3');
  });

  test('describeNegotiable lists what a client can negotiate', async (t) => {
    const started = performance.now();
    const all = await new CertificateStore({ certificates: [relative(site)] }, pki.dir).describeNegotiable();
    t.diagnostic(
      `probe took ${Math.round(performance.now() - started)} ms; versions ${all.versions.join(' ')}; ciphers ${all.ciphers.map((c) => c.name).join(' ')}`,
    );
    assert.deepEqual(all.versions, ['TLSv1.2', 'TLSv1.3']);
    const names = all.ciphers.map((c) => c.name);
    assert.ok(
      names.includes('TLS_AES_128_GCM_SHA256') && names.includes('ECDHE-ECDSA-AES128-GCM-SHA256'),
      names.join(' '),
    );
    assert.ok(!names.some((n) => n.includes('RSA')), 'an EC certificate cannot serve RSA-authenticated suites');
    const only13 = await new CertificateStore(
      { certificates: [relative(site)], minVersion: 'TLSv1.3' },
      pki.dir,
    ).describeNegotiable();
    assert.deepEqual(only13.versions, ['TLSv1.3']);
    assert.ok(only13.ciphers.every((c) => c.version === 'TLSv1.3' && c.name.startsWith('TLS_')));
    const pinned = await new CertificateStore(
      { certificates: [relative(site)], ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
      pki.dir,
    ).describeNegotiable();
    assert.deepEqual(
      pinned.ciphers.filter((c) => c.version === 'TLSv1.2').map((c) => c.standardName),
      ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
    );
  });
});

describe('load-time validation', () => {
  const refuses = (config: TlsConfig, message: RegExp) =>
    assert.throws(
      () => new CertificateStore(config, pki.dir),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TP_TLS_CONFIG');
        assert.match(err.message, message);
        return true;
      },
    );

  test('a missing file, a file that is not a PEM certificate, a key of another certificate: errors naming the file', () => {
    const one = pki.server(serverCa, { names: ['one.example.com'] });
    const two = pki.server(serverCa, { names: ['two.example.com'] });
    writeFileSync(`${pki.dir}/garbage.pem`, 'hello\n');
    refuses(
      { certificates: [{ cert: 'nope.pem', key: relative(one).key }] },
      /tls\.certificates\[0\]\.cert nope\.pem \(.*nope\.pem\): file not found/,
    );
    refuses({ certificates: [{ cert: 'garbage.pem', key: relative(one).key }] }, /garbage\.pem.*not a PEM certificate/);
    refuses(
      { certificates: [relative(one), { cert: relative(two).cert, key: relative(one).key }] },
      /tls\.certificates\[1\]\.key one\.example\.com-key\.pem .*does not match the certificate two\.example\.com\.pem/,
    );
    refuses({ certificates: [relative(one)], clientAuth: { mode: 'require' } }, /tls\.clientAuth\.ca: required/);
    refuses({ certificates: [relative(one)], minVersion: 'TLSv1.1' }, /obsolete/);
  });
});

describe('certificate reload', () => {
  test('overwritten files serve new handshakes within a second; a connection opened before keeps working', async (t) => {
    const first = pki.server(serverCa, { names: ['site.example.com'], file: 'site' });
    const reloads: number[][] = [];
    const reloaded = Promise.withResolvers<void>();
    const { store, port } = await serve({ certificates: [relative(first)] }, pki.dir, {
      onReload: (e) => (reloads.push([...e.changed]), reloaded.resolve()),
    });
    store.watch();
    const before = await open(port, { servername: 'site.example.com', ca: serverCa.cert });
    assert.equal(before.peer.serialNumber, first.serial);

    const next = pki.server(serverCa, { names: ['site.example.com'], file: 'site-next' });
    const started = performance.now();
    writeFileSync(first.certPath, next.cert);
    writeFileSync(first.keyPath, next.key);
    await reloaded.promise;
    const elapsed = performance.now() - started;
    t.diagnostic(`reload seen ${Math.round(elapsed)} ms after the write (debounce 200 ms)`);
    assert.ok(elapsed < 1500, `reload took ${elapsed} ms`);
    assert.deepEqual(reloads, [[0]]);
    assert.equal(
      (await open(port, { servername: 'site.example.com', ca: serverCa.cert })).peer.serialNumber,
      next.serial,
    );
    assert.equal((await open(port, { ca: serverCa.cert })).peer.serialNumber, next.serial, 'clients without SNI too');
    assert.equal(await echo(before, 'still here'), 'still here');
  });

  test('a replacement whose key does not match keeps the old certificate and reports it', async () => {
    const first = pki.server(serverCa, { names: ['bad.example.com'], file: 'bad' });
    const errors: (Error & { code?: string })[] = [];
    const failed = Promise.withResolvers<void>();
    const reloaded = Promise.withResolvers<void>();
    const { store, port } = await serve({ certificates: [relative(first)] }, pki.dir, {
      onError: (err) => (errors.push(err), failed.resolve()),
      onReload: () => reloaded.resolve(),
    });
    store.watch();
    const next = pki.server(serverCa, { names: ['bad.example.com'], file: 'bad-next' });
    writeFileSync(first.certPath, next.cert); // the key stays the old one
    await failed.promise;
    assert.equal(errors[0]!.code, 'TP_TLS_CONFIG');
    assert.match(errors[0]!.message, /bad-key\.pem.*does not match the certificate .*bad\.pem/);
    assert.equal(
      (await open(port, { servername: 'bad.example.com', ca: serverCa.cert })).peer.serialNumber,
      first.serial,
    );

    writeFileSync(first.keyPath, next.key); // the renewal completes
    await reloaded.promise;
    assert.equal(
      (await open(port, { servername: 'bad.example.com', ca: serverCa.cert })).peer.serialNumber,
      next.serial,
    );
    assert.equal(errors.length, 1);
  });
});

describe('client certificates (mTLS)', () => {
  let site: Issued;
  let stranger: Issued;
  const mtls = (mode: 'optional' | 'require') =>
    serve(
      {
        certificates: [relative(site)],
        clientAuth: { mode, ca: basename(clientCa.certPath), forwardHeader: 'x-client-cert' },
      },
      pki.dir,
    );
  const withCert = (c: Issued) => ({ servername: 'm.example.com', ca: serverCa.cert, cert: c.cert, key: c.key });

  before(() => {
    site = pki.server(serverCa, { names: ['m.example.com'] });
    const otherCa = pki.ca('Some Other CA', 'other-ca');
    stranger = pki.client(otherCa, { cn: 'mallory' });
  });

  test('require refuses a client without a certificate or with one from another CA, accepts one signed by the CA', async () => {
    const { port } = await mtls('require');
    await assert.rejects(open(port, { servername: 'm.example.com', ca: serverCa.cert }), /certificate/i);
    // Node checks the chain after OpenSSL's handshake and destroys the socket without an alert: a reset, or a
    // close before the greeting under TLS 1.3 (the client had already finished its side).
    await assert.rejects(open(port, withCert(stranger)), /closed before the greeting|ECONNRESET|disconnected/);
    const session = await open(port, withCert(client));
    assert.equal(session.hello.authorized, true);
    assert.equal(session.hello.identity?.subject, 'CN=alice,O=Acme\\, Inc.');
    const fingerprint = new X509Certificate(client.cert).fingerprint256.replaceAll(':', '').toLowerCase();
    assert.equal(session.hello.header, `subject="CN=alice,O=Acme\\\\, Inc.";fingerprint=sha256:${fingerprint}`);
  });

  test('optional accepts clients with and without a certificate; only a verified one yields an identity', async () => {
    const { port } = await mtls('optional');
    const anonymous = await open(port, { servername: 'm.example.com', ca: serverCa.cert });
    assert.deepEqual(anonymous.hello, { authorized: false, identity: null, header: null });
    const alice = await open(port, withCert(client));
    assert.equal(alice.hello.identity?.subject, 'CN=alice,O=Acme\\, Inc.');
    assert.equal(alice.hello.identity?.issuer, 'CN=Turnpike Test Clients CA');
    const mallory = await open(port, { ...withCert(stranger), servername: '' }); // no SNI: the server's own context
    assert.deepEqual(mallory.hello, { authorized: false, identity: null, header: null });
  });
});

test('the forwarded client header is ASCII: quotes and backslashes escaped, non-ASCII as RFC 4514 hex', () => {
  const header = formatClientCertHeader({
    subject: 'CN=Zoë "Z",O=A\\, B',
    issuer: 'CN=x',
    fingerprint256: 'ab'.repeat(32),
    serialNumber: '01',
  });
  assert.equal(header, `subject="CN=Zo\\\\C3\\\\AB \\"Z\\",O=A\\\\, B";fingerprint=sha256:${'ab'.repeat(32)}`);
});
