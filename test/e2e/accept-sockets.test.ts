// A listener opens `acceptSockets` SO_REUSEPORT sockets on its port, so one event-loop turn accepts that many
// new connections (libuv accepts one per socket and turn). These tests count the sockets the kernel holds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../helpers/ports.ts';
import { spawnGateway } from '../helpers/process.ts';
import { request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const linux = process.platform === 'linux';

/** Listening TCP sockets on 127.0.0.1:port, from /proc/net/tcp (state 0A = LISTEN). */
function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .filter((line) => {
      const cols = line.trim().split(/\s+/);
      return cols[1] === local && cols[3] === '0A';
    }).length;
}

describe('accept sockets', { skip: linux ? false : 'counts sockets through /proc/net/tcp (Linux)' }, () => {
  let backend: Backend;
  before(async () => {
    backend = await startBackend((_req, res) => res.end('ok'));
  });
  after(() => backend.close());

  const yaml = (port: number, acceptSockets?: number, workers?: number) => `
${workers ? `workers: ${workers}` : ''}
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: ${port}${acceptSockets ? `, acceptSockets: ${acceptSockets}` : ''} }]
upstreams: { b: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: b }]
`;

  test('a listener opens 16 sockets on one port by default, serves through them and closes them all on stop', async () => {
    const gw = await startGatewayYaml(yaml(0));
    const port = gw.port();
    try {
      assert.equal(listeningSockets(port), 16);
      // Many fresh connections at once: the kernel spreads them over the sockets; every one is answered.
      const results = await Promise.all(
        Array.from({ length: 64 }, () => request(port, '/x', { headers: { connection: 'close' } })),
      );
      assert.deepEqual(new Set(results.map((r) => r.status)), new Set([200]));
    } finally {
      await gw.stop();
    }
    assert.equal(listeningSockets(port), 0);
  });

  test('acceptSockets: 1 opens a single socket', async () => {
    const gw = await startGatewayYaml(yaml(0, 1));
    const port = gw.port();
    try {
      assert.equal(listeningSockets(port), 1);
      assert.equal((await request(port, '/')).status, 200);
    } finally {
      await gw.stop();
    }
  });

  test('each worker opens its own sockets on a fixed port (the kernel spreads connections, not the primary)', async () => {
    const port = await freePort();
    const gw = await spawnGateway(yaml(port, 3, 2));
    try {
      // spawnGateway returns at the first worker's "listening"; the second may still be opening its sockets.
      await until(() => listeningSockets(port) >= 6, "both workers' sockets");
      assert.equal(listeningSockets(port), 6);
      const results = await Promise.all(
        Array.from({ length: 32 }, () => request(port, '/', { headers: { connection: 'close' } })),
      );
      assert.deepEqual(new Set(results.map((r) => r.status)), new Set([200]));
    } finally {
      assert.equal(await gw.stop(), 0);
    }
    assert.equal(listeningSockets(port), 0);
  });

  test('a port held by another program is refused with TP_LISTEN_FAILED, not shared', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      await assert.rejects(startGatewayYaml(yaml(port)), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'TP_LISTEN_FAILED');
        assert.match(err.message, /EADDRINUSE/);
        return true;
      });
    } finally {
      holder.close();
    }
  });
});
