// T02 (Traefik UDP `timeout`): datagram boundaries through the UDP proxy (up to 65,507 bytes, the largest UDP
// payload over IPv4: the row's "64 KiB - 1" does not fit in an IPv4 datagram), bursts sent out of order, the
// per-client idle timeout, and the session table capped at the listener's `maxClients` (default 10,000) with the
// least recently used mapping evicted for a new client. Each mapping has its own upstream socket, so the backend
// sees which mapping a datagram came through by its source port: that is how eviction and expiry are observed.
// Many distinct clients: 1,000 here, 100,000 under `npm run attacks -- --full` (source addresses rotate over
// 127.0.0.0/8, since 100,000 source ports exceed the ephemeral range).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, test } from 'node:test';
import { scale } from '../helpers/attack-scale.ts';
import { nextEvent } from '../helpers/events.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

interface Seen {
  port: number;
  size: number;
  sha: string;
}

let backend: Socket;
const seen: Seen[] = [];
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
const MAX_CLIENTS = 4;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  backend = createSocket('udp4');
  backend.on('message', (msg, rinfo) => {
    seen.push({ port: rinfo.port, size: msg.length, sha: sha(msg) });
    backend.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => backend.bind(0, '127.0.0.1', () => r()));
  backend.setRecvBufferSize(4 << 20);
  backend.setSendBufferSize(4 << 20);
  gw = await startGatewayYaml(`
listeners:
  - { name: big, protocol: udp, address: 127.0.0.1, port: 0, upstream: echo, idleTimeout: 1h }
  - { name: capped, protocol: udp, address: 127.0.0.1, port: 0, upstream: echo, idleTimeout: 1h, maxClients: ${MAX_CLIENTS} }
  - { name: brief, protocol: udp, address: 127.0.0.1, port: 0, upstream: echo, idleTimeout: 200ms }
  - { name: crowd, protocol: udp, address: 127.0.0.1, port: 0, upstream: echo, idleTimeout: 1h, maxClients: 50 }
upstreams:
  echo: { targets: [{ url: "udp://127.0.0.1:${backend.address().port}" }] }
`);
});
after(async () => {
  await gw.stop();
  backend.close();
});

async function client(address = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  s.setRecvBufferSize(4 << 20);
  s.setSendBufferSize(4 << 20);
  return s;
}

/** Sends `datagrams` to a listener and resolves with the echoes (as many as were sent). */
function exchange(s: Socket, listener: string, datagrams: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const back: Buffer[] = [];
    const onMessage = (m: Buffer) => {
      back.push(m);
      if (back.length === datagrams.length) {
        s.off('message', onMessage);
        resolve(back);
      }
    };
    s.on('message', onMessage);
    for (const d of datagrams) s.send(d, gw.port(listener), '127.0.0.1');
  });
}

/** The source port the backend saw for the last datagram of this content. */
async function portFor(s: Socket, listener: string): Promise<number> {
  const probe = randomBytes(16);
  await exchange(s, listener, [probe]);
  return seen.findLast((x) => x.sha === sha(probe))!.port;
}

test('datagrams of 1 B to 65,507 B, sent in shuffled bursts, arrive and come back whole, one for one', async () => {
  const c = await client();
  const sizes = [1, 2, 512, 1472, 1473, 9000, 32_768, 65_507];
  for (let burst = 0; burst < 4; burst++) {
    const datagrams = sizes.map((n) => randomBytes(n)).sort(() => Math.random() - 0.5);
    const before = seen.length;
    const back = await exchange(c, 'big', datagrams);
    const key = (b: Buffer) => `${b.length}:${sha(b)}`;
    assert.deepEqual(back.map(key).sort(), datagrams.map(key).sort());
    const arrived = seen.slice(before).map((x) => `${x.size}:${x.sha}`);
    assert.deepEqual(arrived.sort(), datagrams.map(key).sort());
  }
  c.close();
});

test('at maxClients every client keeps its mapping; one client past it evicts the least recently used', async () => {
  const clients = await Promise.all(Array.from({ length: MAX_CLIENTS + 1 }, () => client()));
  const first: number[] = [];
  for (const c of clients.slice(0, MAX_CLIENTS)) first.push(await portFor(c, 'capped'));
  assert.equal(new Set(first).size, MAX_CLIENTS);
  // At the limit: nobody is evicted, each client comes through its own mapping again.
  for (let i = 0; i < MAX_CLIENTS; i++) assert.equal(await portFor(clients[i]!, 'capped'), first[i]);
  // One past it: the least recently used (client 0) gives way; the others keep theirs.
  const extra = await portFor(clients[MAX_CLIENTS]!, 'capped');
  assert.ok(!first.includes(extra));
  assert.equal(await portFor(clients[MAX_CLIENTS - 1]!, 'capped'), first[MAX_CLIENTS - 1]);
  const again = await portFor(clients[0]!, 'capped');
  assert.notEqual(again, first[0], 'client 0 was evicted: its next datagram needs a new mapping');
  clients.forEach((c) => c.close());
});

test("a client's mapping ends after idleTimeout, and its next datagram gets a new one", async () => {
  const c = await client();
  const ended = nextEvent(
    'turnpike:l4:close',
    gw.runtime.gateway,
    (e) => e.listener === 'brief' && e.protocol === 'udp',
    'the idle UDP mapping to end',
  );
  const before = await portFor(c, 'brief');
  await ended;
  const after = await portFor(c, 'brief');
  assert.notEqual(after, before);
  c.close();
});

test('many distinct clients: every one is answered and the table never holds more than maxClients', async () => {
  const total = scale(1000, 100_000);
  let open = 0;
  let peak = 0;
  const onOpen = (e: unknown) => {
    if ((e as { listener: string }).listener !== 'crowd') return;
    peak = Math.max(peak, ++open);
  };
  const onClose = (e: unknown) => {
    if ((e as { listener: string }).listener === 'crowd') open--;
  };
  subscribe('turnpike:l4:open', onOpen);
  subscribe('turnpike:l4:close', onClose);
  try {
    let answered = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < total) {
          const i = next++;
          // Source addresses rotate over 127.0.0.0/8 so that every client is a new address:port pair.
          const c = await client(`127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255 || 1}`);
          const payload = randomBytes(32);
          const [back] = await exchange(c, 'crowd', [payload]);
          if (back!.equals(payload)) answered++;
          c.close();
        }
      }),
    );
    assert.equal(answered, total);
    assert.ok(peak <= 50, `${peak} mappings at once`);
    assert.ok(open <= 50);
  } finally {
    unsubscribe('turnpike:l4:open', onOpen);
    unsubscribe('turnpike:l4:close', onClose);
  }
});
