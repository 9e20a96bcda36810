import assert from 'node:assert/strict';
import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type { L4Picker, L4Target } from '../../src/l4/tcp-proxy.ts';
import { UdpProxy, type UdpProxyOptions, type UdpSessionLog } from '../../src/l4/udp-proxy.ts';

const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
});

async function bind(type: SocketType, host: string): Promise<Socket> {
  const s = createSocket(type);
  sockets.push(s);
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

/** A DNS-like server: answers each datagram with `<name>:<question>`. */
async function nameServer(name: string, type: SocketType = 'udp4', host = '127.0.0.1'): Promise<L4Target> {
  const s = await bind(type, host);
  s.on('message', (msg, rinfo) => s.send(`${name}:${msg.toString()}`, rinfo.port, rinfo.address));
  return { key: name, host, port: s.address().port, active: 0 };
}

function roundRobin(targets: L4Target[]): L4Picker {
  let next = 0;
  return { pick: () => targets[next++ % targets.length] };
}

/** A proxy on a fresh listener; `ended(n)` resolves once n mappings have ended. */
async function udpProxy(
  targets: L4Target[],
  options: Omit<UdpProxyOptions, 'onLog'>,
  type: SocketType = 'udp4',
  host = '127.0.0.1',
) {
  const listener = await bind(type, host);
  const logs: UdpSessionLog[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const proxy = new UdpProxy(listener, roundRobin(targets), {
    ...options,
    onLog: (l) => {
      logs.push(l);
      for (const w of waiters.filter((w) => logs.length >= w.n)) w.resolve();
    },
  });
  return {
    proxy,
    port: listener.address().port,
    logs,
    ended: (n: number) =>
      logs.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
}

/** A client socket; `ask` sends one datagram to the proxy and resolves the next answer. */
async function client(port: number, type: SocketType = 'udp4', host = '127.0.0.1') {
  const s = await bind(type, host);
  return {
    socket: s,
    ask: async (question: string): Promise<string> => {
      const answer = once(s, 'message');
      s.send(question, port, host);
      const [msg] = (await answer) as [Buffer];
      return msg.toString();
    },
  };
}

describe('UDP proxy', () => {
  test('each client gets its own answers back, from the target its mapping picked', async () => {
    const a = await nameServer('A');
    const b = await nameServer('B');
    const p = await udpProxy([a, b], { idleTimeout: 10_000 });
    const c1 = await client(p.port);
    const c2 = await client(p.port);
    assert.equal(await c1.ask('q1'), 'A:q1');
    assert.equal(await c2.ask('q2'), 'B:q2');
    // Later datagrams stay on the mapping's target, both clients in flight at once.
    const [r1, r2] = await Promise.all([c1.ask('again1'), c2.ask('again2')]);
    assert.equal(r1, 'A:again1');
    assert.equal(r2, 'B:again2');
    assert.equal(p.proxy.stats.sessions, 2);
    assert.equal(a.active + b.active, 2);
    await p.proxy.close();
    assert.equal(a.active + b.active, 0);
    assert.deepEqual(
      p.logs.map((l) => [l.target, l.datagramsIn, l.datagramsOut, l.end]),
      [
        ['A', 2, 2, 'closed'],
        ['B', 2, 2, 'closed'],
      ],
    );
  });

  test('new clients spread across two targets', async (t) => {
    const a = await nameServer('A');
    const b = await nameServer('B');
    const p = await udpProxy([a, b], { idleTimeout: 10_000 });
    const seen = { A: 0, B: 0 } as Record<string, number>;
    for (let i = 0; i < 20; i++) {
      const c = await client(p.port);
      const answer = await c.ask(`client${i}`);
      assert.match(answer, new RegExp(`^[AB]:client${i}$`));
      seen[answer[0]!]!++;
    }
    t.diagnostic(`20 clients: A ${seen.A}, B ${seen.B}`);
    assert.deepEqual(seen, { A: 10, B: 10 });
    assert.equal(a.active, 10);
    assert.equal(b.active, 10);
    await p.proxy.close();
  });

  test('idle mappings expire after idleTimeout; a returning client gets a new one', async (t) => {
    const a = await nameServer('A');
    const p = await udpProxy([a], { idleTimeout: 150 });
    const clients = await Promise.all([1, 2, 3].map(() => client(p.port)));
    for (const [i, c] of clients.entries()) assert.equal(await c.ask(`q${i}`), `A:q${i}`);
    const started = performance.now();
    assert.equal(p.proxy.stats.sessions, 3);
    await p.ended(3);
    const waited = performance.now() - started;
    assert.ok(waited >= 100, `expired after ${waited} ms`);
    assert.deepEqual(
      p.logs.map((l) => l.end),
      ['idle', 'idle', 'idle'],
    );
    assert.equal(a.active, 0);
    assert.equal(await clients[0]!.ask('back'), 'A:back');
    const stats = p.proxy.stats;
    t.diagnostic(
      `idle 150 ms: 3 mappings expired ${waited.toFixed(0)} ms after the last answer; stats ${JSON.stringify(stats)}`,
    );
    assert.deepEqual(stats, { sessions: 1, created: 4, expired: 3, evicted: 0, dropped: 0 });
    await p.proxy.close();
  });

  test('beyond maxSessions the least recently active mapping is evicted', async () => {
    const a = await nameServer('A');
    const p = await udpProxy([a], { idleTimeout: 10_000, maxSessions: 2 });
    const [c1, c2, c3] = await Promise.all([1, 2, 3].map(() => client(p.port)));
    await c1!.ask('1');
    await c2!.ask('2');
    await c1!.ask('1 again'); // c2 is now the oldest idle
    await c3!.ask('3');
    assert.equal(p.proxy.stats.sessions, 2);
    assert.equal(p.proxy.stats.evicted, 1);
    assert.equal(p.logs[0]?.clientPort, c2!.socket.address().port);
    assert.equal(p.logs[0]?.end, 'evicted');
    await p.proxy.close();
  });

  test('a target that is not listening ends the mapping (ICMP port unreachable)', async () => {
    const gone = await bind('udp4', '127.0.0.1');
    const port = gone.address().port;
    gone.close();
    const dead: L4Target = { key: 'dead', host: '127.0.0.1', port, active: 0 };
    const p = await udpProxy([dead], { idleTimeout: 10_000 });
    const c = await client(p.port);
    // Each datagram is lost; the refusal shows on the mapping's connected socket and ends it.
    const ended = p.ended(1);
    c.socket.send('anyone?', p.port, '127.0.0.1');
    c.socket.send('anyone?', p.port, '127.0.0.1');
    await ended;
    assert.equal(p.logs[0]?.end, 'upstream-error');
    assert.equal(dead.active, 0);
    await p.proxy.close();
  });

  test('IPv6: clients and targets on ::1', async () => {
    const a = await nameServer('A6', 'udp6', '::1');
    const p = await udpProxy([a], { idleTimeout: 10_000 }, 'udp6', '::1');
    const c = await client(p.port, 'udp6', '::1');
    assert.equal(await c.ask('v6?'), 'A6:v6?');
    assert.equal(p.logs.length, 0);
    await p.proxy.close();
    assert.equal(p.logs[0]?.clientAddress, '::1');
  });
});
