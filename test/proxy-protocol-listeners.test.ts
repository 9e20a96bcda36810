// PROXY protocol through the gateway: accepted from trusted load balancers on listeners that ask for it, and
// sent to tcp:// upstreams that ask for it, so the real client address survives L4 hops.
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { makeTestPki } from './helpers/certs.ts';
import { describe, test } from 'node:test';
import { readProxyHeader } from '../src/l4/proxy-protocol.ts';
import { json, startEchoBackend, startGatewayYaml } from './helpers/servers.ts';
import { rawExchange } from './helpers/raw.ts';

describe('PROXY protocol', () => {
  test('an http listener takes the client address from a trusted peer\'s PROXY header, and refuses a trusted peer without one', async () => {
    const echo = await startEchoBackend('app');
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, proxyProtocol: true, trustedProxies: [127.0.0.1/32] }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    try {
      const withHeader = await rawExchange(gw.port(), 'PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
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
        const s = tlsConnect({ socket: raw, servername: 'a.example.com', ca: serverCa.cert }, () => s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
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
      readProxyHeader(socket).then((h) => {
        socket.resume();
        socket.once('data', (d) => {
          seen.push({ source: h.source, payload: String(d) });
          socket.end('ok');
        });
      }, () => socket.destroy());
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
