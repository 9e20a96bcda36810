// HTTPS listeners through the gateway: SNI-selected certificates, HTTP/2 and HTTP/1.1 over ALPN on the same
// routes and plugins, minimum TLS version. Certificates are made at test time (test/helpers/certs.ts).
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type Ca, type Issued, type TestPki } from '../helpers/certs.ts';
import { h2Request } from '../helpers/h2.ts';
import { request, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

let pki: TestPki;
let ca: Ca;
let echo: Backend;
let yaml: string;

before(async () => {
  ({ pki, serverCa: ca } = makeTestPki());
  const a = pki.server(ca, { names: ['a.example.com'] });
  const b = pki.server(ca, { names: ['*.b.example.com'] });
  echo = await startEchoBackend('app');
  yaml = `
listeners:
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates:
        - { cert: "${a.certPath}", key: "${a.keyPath}" }
        - { cert: "${b.certPath}", key: "${b.keyPath}" }
      minVersion: TLSv1.3
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes:
  - name: app
    match: { path: / }
    upstream: app
    plugins: [{ headers: { response: { set: { x-route: app } } } }]
`;
});
after(async () => {
  await echo.close();
  pki.remove();
});

function peerNames(port: number, servername: string | undefined): Promise<{ san: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: ca.cert,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      resolve({ san: socket.getPeerCertificate().subjectaltname ?? '', protocol: socket.getProtocol() });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('https listener', () => {
  test('picks the certificate by SNI (exact and wildcard), the first one without SNI, and TLS 1.3 only when asked', async () => {
    const gw = await startGatewayYaml(yaml);
    try {
      assert.equal((await peerNames(gw.port(), 'a.example.com')).san, 'DNS:a.example.com');
      assert.equal((await peerNames(gw.port(), 'x.b.example.com')).san, 'DNS:*.b.example.com');
      assert.equal((await peerNames(gw.port(), undefined)).san, 'DNS:a.example.com');
      assert.equal((await peerNames(gw.port(), 'a.example.com')).protocol, 'TLSv1.3');
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = tlsConnect(
            { host: '127.0.0.1', port: gw.port(), servername: 'a.example.com', ca: ca.cert, maxVersion: 'TLSv1.2' },
            () => resolve(s),
          );
          s.once('error', reject);
        }),
      );
    } finally {
      await gw.stop();
    }
  });

  test('serves the same route and plugins over HTTP/2 and HTTP/1.1 (ALPN)', async () => {
    const gw = await startGatewayYaml(yaml);
    try {
      // HTTP/2
      // Connect to 127.0.0.1 while presenting a.example.com as SNI and :authority.
      const session = h2connect(`https://a.example.com:${gw.port()}`, {
        ca: ca.cert,
        servername: 'a.example.com',
        createConnection: () =>
          tlsConnect({
            host: '127.0.0.1',
            port: gw.port(),
            servername: 'a.example.com',
            ca: ca.cert,
            ALPNProtocols: ['h2'],
          }),
      });
      const h2 = await h2Request(session, { ':path': '/hello?x=1', ':method': 'GET' });
      session.close();
      assert.equal(h2.status, 200);
      assert.equal(h2.route, 'app');
      const seen = JSON.parse(h2.body) as { url: string; headers: Record<string, string> };
      assert.equal(seen.url, '/hello?x=1');
      assert.equal(seen.headers.host, `a.example.com:${gw.port()}`);
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.ok(!Object.keys(seen.headers).some((h) => h.startsWith(':')), 'no pseudo-header reaches the upstream');
      // HTTP/1.1 on the same listener
      const h1 = await new Promise<{ status: number; route: string }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: gw.port(),
            path: '/',
            servername: 'a.example.com',
            ca: ca.cert,
            headers: { host: 'a.example.com' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, route: String(res.headers['x-route']) }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(h1, { status: 200, route: 'app' });
    } finally {
      await gw.stop();
    }
  });
});

describe('default ciphers', () => {
  test('TLS 1.2 offers only forward-secret AEAD suites by default: a client limited to RSA key exchange or CBC is refused', async () => {
    const { pki: p4, serverCa } = makeTestPki();
    const rsa = p4.server(serverCa, { names: ['r.example.com'], keyType: 'rsa' });
    const gw = await startGatewayYaml(`
listeners:
  - { name: s, protocol: https, address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: "${rsa.certPath}", key: "${rsa.keyPath}" }] } }
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    const handshake = (ciphers: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect(
          {
            host: '127.0.0.1',
            port: gw.port(),
            servername: 'r.example.com',
            ca: serverCa.cert,
            maxVersion: 'TLSv1.2',
            ciphers,
          },
          () => {
            resolve(s.getCipher().standardName);
            s.destroy();
          },
        );
        s.once('error', reject);
      });
    try {
      assert.equal(await handshake('ECDHE-RSA-AES128-GCM-SHA256'), 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
      await assert.rejects(handshake('AES128-GCM-SHA256')); // RSA key exchange: no forward secrecy
      await assert.rejects(handshake('ECDHE-RSA-AES128-SHA')); // CBC with SHA-1
    } finally {
      await gw.stop();
      p4.remove();
    }
  });
});

describe('client certificates, redirects and HSTS', () => {
  test('mTLS optional: a verified client certificate goes upstream in forwardHeader (a client copy never does); requireClientCert routes refuse clients without one', async () => {
    const { pki: p2, serverCa, clientCa, client } = makeTestPki();
    const server = p2.server(serverCa, { names: ['a.example.com'] });
    const gw = await startGatewayYaml(`
listeners:
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates: [{ cert: "${server.certPath}", key: "${server.keyPath}" }]
      clientAuth: { mode: optional, ca: "${clientCa.certPath}", forwardHeader: x-client-cert }
    hsts: { maxAge: 1y, includeSubDomains: true }
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes:
  - { name: admin, match: { path: /admin }, upstream: app, requireClientCert: true }
  - { name: app, match: { path: / }, upstream: app }
`);
    const status = (path: string, withCert: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: gw.port(),
            path,
            servername: 'a.example.com',
            ca: serverCa.cert,
            agent: false,
            headers: { host: 'a.example.com' }, // the SNI's host: an mTLS listener answers 421 to any other
            ...(withCert ? { cert: client.cert, key: client.key } : {}),
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const get = (withCert: boolean) =>
      new Promise<{ headers: Record<string, string>; hsts: string }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port: gw.port(),
            path: '/',
            servername: 'a.example.com',
            ca: serverCa.cert,
            agent: false,
            headers: { host: 'a.example.com', 'x-client-cert': 'subject="CN=admin"' },
            ...(withCert ? { cert: client.cert, key: client.key } : {}),
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () =>
              resolve({ headers: JSON.parse(body).headers, hsts: String(res.headers['strict-transport-security']) }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      const withCert = await get(true);
      assert.match(withCert.headers['x-client-cert']!, /^subject="[^"]*CN=[^"]+";fingerprint=sha256:[0-9a-f]{64}$/);
      assert.ok(!withCert.headers['x-client-cert']!.includes('admin'));
      assert.equal(withCert.hsts, 'max-age=31536000; includeSubDomains');
      const without = await get(false);
      assert.equal(without.headers['x-client-cert'], undefined, 'the client-sent copy is removed');
      // A route with requireClientCert: 403 without a verified certificate, served with one.
      assert.equal(await status('/admin', false), 403);
      assert.equal(await status('/admin', true), 200);
    } finally {
      await gw.stop();
      p2.remove();
    }
  });

  test('redirectToHttps answers a plain listener with a 308 to the same host and path on https', async () => {
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, redirectToHttps: 8443 }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    try {
      const r = await request(gw.port(), '/a/b?c=1', { headers: { host: 'shop.example.com:8080' } });
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, 'https://shop.example.com:8443/a/b?c=1');
    } finally {
      await gw.stop();
    }
  });
});

describe('upstream TLS', () => {
  test('https targets are verified against the configured ca; insecureSkipVerify works (with a warning)', async () => {
    const { pki: p3, serverCa } = makeTestPki();
    const cert = p3.server(serverCa, { names: ['backend.internal'] });
    const backend = createHttpsServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('secure hello'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as { port: number }).port;
    const config = (tls: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "https://127.0.0.1:${port}" }], ${tls} } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`;
    try {
      for (const [tls, status, body] of [
        [`tls: { ca: "${serverCa.certPath}", serverName: backend.internal }`, 200, /^secure hello$/],
        ['tls: { serverName: backend.internal }', 502, /"code":"TP_UPSTREAM_TLS"/], // system CAs do not know the test CA
        ['tls: { insecureSkipVerify: true }', 200, /^secure hello$/],
      ] as const) {
        const gw = await startGatewayYaml(config(tls));
        try {
          const r = await request(gw.port(), '/');
          assert.equal(r.status, status, tls);
          assert.match(r.body, body, tls);
        } finally {
          await gw.stop();
        }
      }
    } finally {
      backend.close();
      p3.remove();
    }
  });
});

// Renegotiation makes the server redo the handshake's public-key work as often as the client asks on one
// connection: a CPU-exhaustion attack that NGINX and HAProxy refuse. TLS 1.3 has none; TLS 1.2 clients can ask.
describe('client-initiated TLS renegotiation', () => {
  let pki: TestPki;
  let ca: Ca;
  let cert: Issued;
  before(() => {
    ({ pki, serverCa: ca } = makeTestPki());
    cert = pki.server(ca, { names: ['a.example.com'] });
  });
  after(() => pki.remove());

  const clients: TLSSocket[] = []; // closed before the gateway stops, whatever the outcome (stop drains them)
  const closeClients = () => clients.splice(0).forEach((s) => s.destroy());

  async function tls12(port: number, servername: string | undefined): Promise<TLSSocket> {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: ca.cert,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      ...(servername ? { servername } : { checkServerIdentity: () => undefined }),
    });
    clients.push(s);
    await once(s, 'secureConnect');
    assert.equal(s.getProtocol(), 'TLSv1.2');
    return s;
  }

  /** Sends one keep-alive HTTP/1.1 request and reads its whole response (Content-Length or chunked). */
  function exchange(s: TLSSocket, path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        text += chunk.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
        if (length ? text.length >= end + 4 + Number(length[1]) : text.endsWith('\r\n0\r\n\r\n')) {
          s.off('data', onData);
          s.off('error', reject);
          resolve(text);
        }
      };
      s.on('data', onData);
      s.once('error', reject);
      s.write(`GET ${path} HTTP/1.1\r\nHost: a.example.com\r\n\r\n`);
    });
  }

  /** What became of a renegotiation the client asks for: 'accepted', or how it was refused. */
  function renegotiation(s: TLSSocket): Promise<string> {
    return new Promise((resolve) => {
      s.once('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code}`));
      s.once('close', () => resolve('refused: connection closed'));
      s.renegotiate({}, (err) => resolve(err ? `refused: ${(err as NodeJS.ErrnoException).code}` : 'accepted'));
    });
  }

  test('a TLS 1.2 client that renegotiates on an https listener is refused, and the listener keeps serving', async () => {
    const echo = await startEchoBackend('app');
    const gw = await startGatewayYaml(`
listeners:
  - { name: s, protocol: https, address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] } }
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    try {
      // With SNI (the context SNICallback picks) and without (the server's default context).
      for (const servername of ['a.example.com', undefined]) {
        const attacker = await tls12(gw.port(), servername);
        assert.match(await exchange(attacker, '/before'), /^HTTP\/1.1 200 /);
        assert.equal(await renegotiation(attacker), 'refused: ERR_SSL_NO_RENEGOTIATION', `servername ${servername}`);
        const other = await tls12(gw.port(), servername);
        assert.match(await exchange(other, '/after'), /^HTTP\/1.1 200 /);
      }
    } finally {
      closeClients();
      await gw.stop();
      await echo.close();
    }
  });

  test('a TLS 1.2 client that renegotiates on a tcp listener terminating TLS is refused, and the listener keeps serving', async () => {
    const upstream = createNetServer((s) => s.on('data', (d: Buffer) => s.write(`echo:${d}`)));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: dbtls, protocol: tcp, address: 127.0.0.1, port: 0, upstream: db, tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] } }
upstreams: { db: { targets: [{ url: "tcp://127.0.0.1:${(upstream.address() as AddressInfo).port}" }] } }
`);
    const ask = async (s: TLSSocket, text: string) => {
      s.write(text);
      const [reply] = (await once(s, 'data')) as [Buffer];
      return reply.toString();
    };
    try {
      const attacker = await tls12(gw.port('dbtls'), 'a.example.com');
      assert.equal(await ask(attacker, 'before'), 'echo:before');
      assert.equal(await renegotiation(attacker), 'refused: ERR_SSL_NO_RENEGOTIATION');
      const other = await tls12(gw.port('dbtls'), 'a.example.com');
      assert.equal(await ask(other, 'after'), 'echo:after');
    } finally {
      closeClients();
      await gw.stop();
      upstream.close();
    }
  });
});
