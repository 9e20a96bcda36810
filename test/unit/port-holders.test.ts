// Finding who listens on a port through /proc: real listening sockets of this process, found by address and port.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, test } from 'node:test';
import { refuseHeldPorts } from '../../src/runtime/port-holders.ts';

const linux = process.platform === 'linux';
const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function listen(host: string): Promise<number | null> {
  const server = createServer();
  server.on('error', () => undefined);
  server.listen({ host, port: 0 });
  const [outcome] = await Promise.race([once(server, 'listening'), once(server, 'error')]);
  if (outcome instanceof Error) return null; // no IPv6 here
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

const nobody = new Set<number>();

test('a port this process listens on is found, by exact address and through wildcards', { skip: !linux }, async () => {
  const port = (await listen('127.0.0.1'))!;
  const claim = (address: string) => [{ name: 'web', address, port }];
  assert.throws(
    () => refuseHeldPorts(claim('127.0.0.1'), { handover: false, ownPids: nobody }),
    (err: Error & { code?: string }) => err.code === 'TP_LISTEN_FAILED' && err.message.includes(`(pid ${process.pid})`),
  );
  // 0.0.0.0 takes 127.0.0.1's connections; 127.0.0.2 is another address.
  assert.throws(() => refuseHeldPorts(claim('0.0.0.0'), { handover: false, ownPids: nobody }));
  assert.deepEqual(refuseHeldPorts(claim('127.0.0.2'), { handover: false, ownPids: nobody }), []);
  // Our own sockets (a reload, the workers of a primary) are not another's.
  assert.deepEqual(refuseHeldPorts(claim('127.0.0.1'), { handover: false, ownPids: new Set([process.pid]) }), []);
  // --handover: found, said, not refused.
  const shared = refuseHeldPorts(claim('127.0.0.1'), { handover: true, ownPids: nobody });
  assert.deepEqual(
    shared.map((s) => s.holders.map((h) => h.pid)),
    [[process.pid]],
  );
});

test('IPv6 listening sockets are decoded from /proc/net/tcp6', { skip: !linux }, async (t) => {
  const port = await listen('::1');
  if (port === null) return t.skip('no IPv6 loopback');
  assert.throws(() => refuseHeldPorts([{ name: 'web', address: '::1', port }], { handover: false, ownPids: nobody }));
  assert.throws(() => refuseHeldPorts([{ name: 'web', address: '::', port }], { handover: false, ownPids: nobody }));
  assert.deepEqual(
    refuseHeldPorts([{ name: 'web', address: '127.0.0.1', port }], { handover: false, ownPids: nobody }),
    [],
  );
});

test('port 0 is never held', () => {
  assert.deepEqual(
    refuseHeldPorts([{ name: 'web', address: '0.0.0.0', port: 0 }], { handover: false, ownPids: nobody }),
    [],
  );
});
