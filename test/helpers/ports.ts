// Port numbers for tests that cannot use port 0: bound once on 127.0.0.1, then released.
import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * A port nothing listens on now (or `want`, when it is free; the listen fails otherwise): for a server that must be
 * told its port in advance (redis-server, a fixed listener port), or a target that refuses connections.
 */
export async function freePort(want = 0): Promise<number> {
  const server = createServer().listen(want, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A port whose connections are refused (what `freePort` gives, named for what the test wants of it). */
export const closedPort = (): Promise<number> => freePort();
