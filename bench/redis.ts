// The bench's own redis-server, for the `turnpike-gateway-redis` case (rate-limit with store: redis): on a free
// loopback port, in a temp directory, nothing persisted (no RDB snapshots, no AOF), stopped with the bench.
import { startChild, type Child } from './children.ts';
import { freePort } from './net.ts';
import { TOOLS, toolPath } from './system.ts';

export interface RedisServer {
  readonly child: Child;
  readonly port: number;
  /** For `stores: { redis: { url } }`. */
  readonly url: string;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const bin = toolPath(TOOLS['redis-server']);
  if (!bin)
    throw new Error(`redis-server not found — install it with: apt-get install -y ${TOOLS['redis-server'].apt}`);
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--logfile',
    '', // log to stdout, where we wait for "Ready to accept connections"
    '--databases',
    '1',
  ];
  const child = startChild(bin, args, { guard: true });
  try {
    await child.waitForOutput(/Ready to accept connections/, 10_000);
  } catch (err) {
    const said = child
      .tail()
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .slice(-3)
      .join(' | ');
    await child.stop(1000);
    throw new Error(`redis-server did not start: ${(err as Error).message}${said ? ` | ${said}` : ''}`.slice(0, 600));
  }
  return { child, port, url: `redis://127.0.0.1:${port}` };
}
