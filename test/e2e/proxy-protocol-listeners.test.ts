// PROXY protocol through the gateway: accepted from trusted load balancers on listeners that ask for it, and
// sent to tcp:// upstreams that ask for it, so the real client address survives L4 hops.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import { encodeProxyHeader, readProxyHeader } from '../../src/l4/proxy-protocol.ts';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { rawExchange, tlsAfterPrefix, watchServerReads, type ServerReads } from '../helpers/raw.ts';
import { json, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

describe('PROXY protocol', () => {
  test("an http listener takes the client address from a trusted peer's PROXY header, and refuses a trusted peer without one", async () => {
    const echo = await startEchoBackend('app');
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, proxyProtocol: true, trustedProxies: [127.0.0.1/32] }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    try {
      const withHeader = await rawExchange(
        gw.port(),
        'PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      );
      assert.match(withHeader.text, /^HTTP\/1.1 200/);
      const body = withHeader.text.slice(withHeader.text.indexOf('{'), withHeader.text.lastIndexOf('}') + 1);
      assert.equal(json({ status: 200, headers: {}, body }).headers['x-forwarded-for'], '203.0.113.7');
      const without = await rawExchange(gw.port(), 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.equal(without.text, '', 'no answer: the connection is closed');
      assert.equal(without.closed, true);
    } finally {
      await gw.stop();
      await echo.close();
    }
  });

  test('an https listener reads the PROXY header before the TLS handshake (header and ClientHello in one write)', async () => {
    const { pki, serverCa } = makeTestPki();
    const cert = pki.server(serverCa, { names: ['a.example.com'] });
    const echo = await startEchoBackend('app');
    const gw = await startGatewayYaml(`
listeners:
  - name: s
    protocol: https
    address: 127.0.0.1
    port: 0
    proxyProtocol: true
    trustedProxies: [127.0.0.1/32]
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    try {
      const raw = connect(gw.port(), '127.0.0.1');
      await new Promise((r) => raw.once('connect', r));
      // Cork: the PROXY line and the TLS ClientHello leave in one segment, as a load balancer sends them.
      raw.cork();
      raw.write('PROXY TCP4 198.51.100.9 127.0.0.1 4444 443\r\n');
      const text = await new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ socket: raw, servername: 'a.example.com', ca: serverCa.cert }, () =>
          s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
        );
        process.nextTick(() => raw.uncork());
        let t = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (t += d));
        s.on('end', () => resolve(t));
        s.on('error', reject);
      });
      assert.match(text, /"x-forwarded-for":"198\.51\.100\.9"/);
    } finally {
      await gw.stop();
      await echo.close();
      pki.remove();
    }
  });

  test('a tcp:// upstream with proxyProtocol: v2 gets a header naming the client before its bytes', async () => {
    const seen: { source?: { address: string; port: number }; payload: string }[] = [];
    const backend = createServer((socket) => {
      readProxyHeader(socket).then(
        (h) => {
          socket.resume();
          socket.once('data', (d) => {
            seen.push({ source: h.source, payload: String(d) });
            socket.end('ok');
          });
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: db, protocol: tcp, address: 127.0.0.1, port: 0, upstream: db }
upstreams: { db: { proxyProtocol: v2, targets: [{ url: "tcp://127.0.0.1:${(backend.address() as { port: number }).port}" }] } }
`);
    try {
      const clientPort = await new Promise<number>((resolve, reject) => {
        const s = connect(gw.port('db'), '127.0.0.1', () => s.write('hello'));
        s.on('data', () => {
          resolve(s.localPort!);
          s.destroy();
        });
        s.on('error', reject);
      });
      assert.deepEqual(seen, [{ source: { address: '127.0.0.1', port: clientPort }, payload: 'hello' }]);
    } finally {
      await gw.stop();
      backend.close();
    }
  });
});

// A load balancer (HAProxy `send-proxy`) writes its PROXY header and the client's first bytes in one segment;
// other senders split them. Whatever the split, every byte after the header must reach the upstream.
const DELIVERIES = ['one write', 'two writes', 'header split in two'] as const;
type Delivery = (typeof DELIVERIES)[number];
const VERSIONS = ['v1', 'v2'] as const;
const NAMED = { source: { address: '203.0.113.7', port: 5555 }, destination: { address: '192.0.2.1', port: 443 } };

/** How a test name says `delivery` of the header and `first` (the bytes after it). */
function sent(delivery: Delivery, first: string): string {
  if (delivery === 'one write') return `header and ${first} in one write`;
  if (delivery === 'two writes') return `header, then ${first} in a second write`;
  return `header split in two, ${first} with its second half`;
}

async function connected(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/**
 * Sends the part of `header` that goes ahead of the first bytes, each part waited for until the gateway has read
 * it, and returns the part that goes out in one write with them.
 */
async function sendHeader(raw: Socket, reads: ServerReads, header: Buffer, delivery: Delivery): Promise<Buffer> {
  if (delivery === 'one write') return header;
  const cut = delivery === 'two writes' ? header.length : Math.floor(header.length / 2);
  raw.write(header.subarray(0, cut));
  await reads.until(cut);
  return header.subarray(cut);
}

/** The gateway's first read is what `delivery` promised: header and first bytes together, or the first part. */
function assertFirstRead(reads: ServerReads, header: Buffer, firstWrite: Buffer, delivery: Delivery): void {
  const expected =
    delivery === 'one write'
      ? firstWrite.length
      : delivery === 'two writes'
        ? header.length
        : Math.floor(header.length / 2);
  assert.equal(reads.sizes[0], expected, `first read of ${reads.sizes[0]} bytes, expected ${expected}`);
}

function readAll(socket: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

describe('bytes sent with the PROXY header reach the upstream', () => {
  describe('tcp listener', () => {
    let pki: TestPki;
    let ca: Ca;
    let upstream: Server;
    let tlsUpstream: TlsServer;
    let nextUpstream: ((bytes: Buffer) => void) | undefined;
    let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
    before(async () => {
      ({ pki, serverCa: ca } = makeTestPki());
      const cert = pki.server(ca, { names: ['a.example.com'] });
      // Takes bytes until the client's end, then answers and ends.
      upstream = createServer({ allowHalfOpen: true }, (socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => {
          nextUpstream?.(Buffer.concat(chunks));
          socket.end('ok');
        });
      });
      upstream.listen(0, '127.0.0.1');
      await once(upstream, 'listening');
      // The TLS backend behind the passthrough listener: the handshake is end to end with it.
      tlsUpstream = createTlsServer({ cert: cert.cert, key: cert.key }, (s) =>
        s.end(`A saw ${(s as TLSSocket).servername}`),
      );
      tlsUpstream.listen(0, '127.0.0.1');
      await once(tlsUpstream, 'listening');
      const trusted = 'proxyProtocol: true, trustedProxies: [127.0.0.1/32]';
      gw = await startGatewayYaml(`
listeners:
  - { name: db, protocol: tcp, address: 127.0.0.1, port: 0, upstream: db, ${trusted} }
  - { name: dbtls, protocol: tcp, address: 127.0.0.1, port: 0, upstream: db, ${trusted}, tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] } }
  - { name: passthrough, protocol: tcp, address: 127.0.0.1, port: 0, ${trusted}, sni: [{ serverName: a.example.com, upstream: a-tls }] }
upstreams:
  db: { targets: [{ url: "tcp://127.0.0.1:${(upstream.address() as AddressInfo).port}" }] }
  a-tls: { targets: [{ url: "tcp://127.0.0.1:${(tlsUpstream.address() as AddressInfo).port}" }] }
`);
    });
    after(async () => {
      await gw.stop();
      upstream.close();
      tlsUpstream.close();
      pki.remove();
    });

    for (const version of VERSIONS) {
      for (const delivery of DELIVERIES) {
        test(`tcp listener, PROXY ${version}, ${sent(delivery, 'payload')}: the upstream receives every payload byte`, async () => {
          const header = encodeProxyHeader(version, NAMED);
          const payload = Buffer.from(`${version} ${delivery}: payload\r\n\0\x0d\x0a binary too`);
          const upstreamGot = new Promise<Buffer>((resolve) => (nextUpstream = resolve));
          const reads = watchServerReads(gw.port('db'));
          try {
            const raw = await connected(gw.port('db'));
            const prefix = await sendHeader(raw, reads, header, delivery);
            const first = Buffer.concat([prefix, payload]);
            raw.end(first);
            const [got, answer] = await Promise.all([upstreamGot, readAll(raw)]);
            assert.equal(got.toString('latin1'), payload.toString('latin1'));
            assert.equal(answer, 'ok');
            assertFirstRead(reads, header, first, delivery);
          } finally {
            reads.stop();
          }
        });
      }

      test(`tcp listener terminating TLS, PROXY ${version}, header and ClientHello in one write: the upstream receives every clear byte`, async () => {
        const header = encodeProxyHeader(version, NAMED);
        const payload = Buffer.from(`${version} through TLS\r\n`);
        const upstreamGot = new Promise<Buffer>((resolve) => (nextUpstream = resolve));
        const reads = watchServerReads(gw.port('dbtls'));
        try {
          const { tls, firstWrite } = tlsAfterPrefix(await connected(gw.port('dbtls')), header, {
            servername: 'a.example.com',
            ca: ca.cert,
          });
          const answer = readAll(tls);
          tls.once('secureConnect', () => tls.end(payload));
          assert.equal((await upstreamGot).toString('latin1'), payload.toString('latin1'));
          assert.equal(await answer, 'ok');
          assertFirstRead(reads, header, await firstWrite, 'one write');
        } finally {
          reads.stop();
        }
      });

      test(`tcp listener passing TLS through by SNI, PROXY ${version}, header and ClientHello in one write: the handshake reaches the backend`, async () => {
        const header = encodeProxyHeader(version, NAMED);
        const reads = watchServerReads(gw.port('passthrough'));
        try {
          const { tls, firstWrite } = tlsAfterPrefix(await connected(gw.port('passthrough')), header, {
            servername: 'a.example.com',
            ca: ca.cert,
          });
          assert.equal(await readAll(tls), 'A saw a.example.com');
          assertFirstRead(reads, header, await firstWrite, 'one write');
        } finally {
          reads.stop();
        }
      });
    }
  });

  describe('http listener', () => {
    let echo: Backend;
    let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
    before(async () => {
      echo = await startEchoBackend('app');
      gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, proxyProtocol: true, trustedProxies: [127.0.0.1/32] }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    });
    after(async () => {
      await gw.stop();
      await echo.close();
    });

    for (const version of VERSIONS) {
      for (const delivery of DELIVERIES) {
        test(`http listener, PROXY ${version}, ${sent(delivery, 'request')}: answered, and the backend sees the named client`, async () => {
          const header = encodeProxyHeader(version, NAMED);
          const path = `/${version}/${delivery.replaceAll(' ', '-')}`;
          const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
          const reads = watchServerReads(gw.port());
          try {
            const raw = await connected(gw.port());
            const prefix = await sendHeader(raw, reads, header, delivery);
            const first = Buffer.concat([prefix, request]);
            const answer = readAll(raw);
            raw.write(first);
            assert.match(await answer, /^HTTP\/1.1 200 /);
            const seen = echo.requests.find((r) => r.url === path);
            assert.equal(seen?.headers['x-forwarded-for'], '203.0.113.7');
            assertFirstRead(reads, header, first, delivery);
          } finally {
            reads.stop();
          }
        });
      }
    }
  });

  describe('https listener', () => {
    let pki: TestPki;
    let ca: Ca;
    let echo: Backend;
    let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
    before(async () => {
      ({ pki, serverCa: ca } = makeTestPki());
      const cert = pki.server(ca, { names: ['a.example.com'] });
      echo = await startEchoBackend('app');
      gw = await startGatewayYaml(`
listeners:
  - name: s
    protocol: https
    address: 127.0.0.1
    port: 0
    proxyProtocol: true
    trustedProxies: [127.0.0.1/32]
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    });
    after(async () => {
      await gw.stop();
      await echo.close();
      pki.remove();
    });

    for (const version of VERSIONS) {
      for (const delivery of DELIVERIES) {
        test(`https listener, PROXY ${version}, ${sent(delivery, 'TLS ClientHello')}: answered, and the backend sees the named client`, async () => {
          const header = encodeProxyHeader(version, NAMED);
          const path = `/${version}/${delivery.replaceAll(' ', '-')}`;
          const reads = watchServerReads(gw.port());
          try {
            const raw = await connected(gw.port());
            const prefix = await sendHeader(raw, reads, header, delivery);
            const { tls, firstWrite } = tlsAfterPrefix(raw, prefix, {
              servername: 'a.example.com',
              ca: ca.cert,
              ALPNProtocols: ['http/1.1'],
            });
            const answer = readAll(tls);
            tls.once('secureConnect', () => tls.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`));
            assert.match(await answer, /^HTTP\/1.1 200 /);
            const seen = echo.requests.find((r) => r.url === path);
            assert.equal(seen?.headers['x-forwarded-for'], '203.0.113.7');
            assertFirstRead(reads, header, await firstWrite, delivery);
          } finally {
            reads.stop();
          }
        });
      }
    }
  });
});
