// TCP and UDP listeners through the gateway: bytes and datagrams reach tcp:// and udp:// upstreams, balanced;
// TLS passthrough picks the upstream by the ClientHello's server name.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect, type Server as TlsServer } from 'node:tls';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

/** A TCP server that answers every chunk with `name:` + the chunk. */
async function tcpEcho(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('data', (d) => s.write(`${name}:${d}`));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

function tcpAsk(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    s.setEncoding('utf8');
    s.once('data', (d: string) => {
      resolve(d);
      s.destroy();
    });
    s.once('error', reject);
  });
}

describe('tcp listener', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  test('forwards bytes to a tcp:// upstream and balances new connections over its targets', async () => {
    const a = await tcpEcho('a');
    const b = await tcpEcho('b');
    servers.push(a.server, b.server);
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: db, protocol: tcp, address: 127.0.0.1, port: 0, upstream: pg }
upstreams:
  pg: { balance: round-robin, targets: [{ url: "tcp://127.0.0.1:${a.port}" }, { url: "tcp://127.0.0.1:${b.port}" }] }
`);
    try {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await tcpAsk(gw.port('db'), 'ping'));
      assert.deepEqual(answers.sort(), ['a:ping', 'a:ping', 'b:ping', 'b:ping']);
    } finally {
      await gw.stop();
    }
  });
});

describe('tcp health checks', () => {
  test('a tcp:// target that stops accepting is taken out by the active check; new connections go to the other', async () => {
    const a = await tcpEcho('a');
    const b = await tcpEcho('b');
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: db, protocol: tcp, address: 127.0.0.1, port: 0, upstream: pg }
upstreams:
  pg:
    targets: [{ url: "tcp://127.0.0.1:${a.port}" }, { url: "tcp://127.0.0.1:${b.port}" }]
    healthCheck: { active: { interval: 50ms, timeout: 200ms, unhealthyThreshold: 1, healthyThreshold: 1 } }
`);
    try {
      b.server.close();
      await until(
        () => {
          const pool = gw.runtime.current.l4Pools.get('pg')!;
          return pool.pick('127.0.0.1')?.port === a.port && pool.pick('127.0.0.1')?.port === a.port;
        },
        'the pool to stop picking the closed target (without the check, round robin would not)',
        3000,
      );
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await tcpAsk(gw.port('db'), 'ping'));
      assert.deepEqual(answers, ['a:ping', 'a:ping', 'a:ping', 'a:ping']);
    } finally {
      a.server.close();
      await gw.stop();
    }
  });
});

describe('tls passthrough', () => {
  let pki: TestPki;
  let ca: Ca;
  const tlsServers: TlsServer[] = [];
  before(() => {
    ({ pki, serverCa: ca } = makeTestPki());
  });
  after(() => {
    tlsServers.forEach((s) => s.close());
    pki.remove();
  });

  async function tlsBackend(name: string, san: string): Promise<number> {
    const cert = pki.server(ca, { names: [san] });
    const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => {
      s.end(`${name} saw ${s.servername}`);
    });
    tlsServers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  }

  function ask(port: number, servername: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let secure = false;
      const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: ca.cert }, () => (secure = true));
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('error', reject);
      s.on('close', () => (secure ? resolve(text) : reject(new Error('closed before the TLS handshake'))));
    });
  }

  test('a tcp listener with tls terminates TLS and forwards the clear bytes', async () => {
    const plain = await tcpEcho('plain');
    const cert = pki.server(ca, { names: ['db.example.com'] });
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - name: dbtls
    protocol: tcp
    address: 127.0.0.1
    port: 0
    upstream: db
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams:
  db: { targets: [{ url: "tcp://127.0.0.1:${plain.port}" }] }
`);
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = tlsConnect(
          { host: '127.0.0.1', port: gw.port('dbtls'), servername: 'db.example.com', ca: ca.cert },
          () => s.write('hello'),
        );
        s.setEncoding('utf8');
        s.once('data', (d: string) => {
          resolve(d);
          s.destroy();
        });
        s.once('error', reject);
      });
      assert.equal(answer, 'plain:hello');
    } finally {
      plain.server.close();
      await gw.stop();
    }
  });

  test('routes by the ClientHello server name without terminating TLS; an unknown name is refused', async () => {
    const aPort = await tlsBackend('A', 'a.example.com');
    const bPort = await tlsBackend('B', '*.b.example.com');
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - name: passthrough
    protocol: tcp
    address: 127.0.0.1
    port: 0
    sni:
      - { serverName: a.example.com, upstream: a-tls }
      - { serverName: "*.b.example.com", upstream: b-tls }
upstreams:
  a-tls: { targets: [{ url: "tcp://127.0.0.1:${aPort}" }] }
  b-tls: { targets: [{ url: "tcp://127.0.0.1:${bPort}" }] }
`);
    try {
      // The client verifies the backend's own certificate end to end: TLS was not terminated at the gateway.
      assert.equal(await ask(gw.port('passthrough'), 'a.example.com'), 'A saw a.example.com');
      assert.equal(await ask(gw.port('passthrough'), 'x.b.example.com'), 'B saw x.b.example.com');
      await assert.rejects(ask(gw.port('passthrough'), 'c.example.com'));
    } finally {
      await gw.stop();
    }
  });
});

describe('udp listener', () => {
  test('forwards datagrams and returns each reply to the client that asked', async () => {
    const target = createSocket('udp4');
    target.on('message', (msg, rinfo) => target.send(`echo:${msg}`, rinfo.port, rinfo.address));
    await new Promise<void>((r) => target.bind(0, '127.0.0.1', () => r()));
    const gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: dns, protocol: udp, address: 127.0.0.1, port: 0, upstream: dns, idleTimeout: 30s }
upstreams:
  dns: { targets: [{ url: "udp://127.0.0.1:${target.address().port}" }] }
`);
    const clients = [createSocket('udp4'), createSocket('udp4')];
    try {
      const replies = await Promise.all(
        clients.map(
          (c, i) =>
            new Promise<string>((resolve) => {
              c.once('message', (m) => resolve(String(m)));
              c.send(`q${i}`, gw.port('dns'), '127.0.0.1');
            }),
        ),
      );
      assert.deepEqual(replies, ['echo:q0', 'echo:q1']);
    } finally {
      clients.forEach((c) => c.close());
      target.close();
      await gw.stop();
    }
  });
});
