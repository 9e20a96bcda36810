// A throwaway redis-server (found on PATH; `npm test` installs it) on a free local port, for tests of the Redis-backed stores:
// no persistence, its own temp directory, removed again by stop(). spawnRedis and serverArgs start the others
// (the replicas, sentinels and cluster nodes of redis-sentinel.ts and redis-cluster.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly process: ChildProcess;
  /** Kills the server (if still running) and removes its directory. */
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort(); // redis-server cannot report a port 0 it bound
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  child.stdout!.resume();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Spawns redis-server with `args` and resolves once its log says `ready`. */
export async function spawnRedis(args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`redis-server ${args.join(' ')} exited (${code}): ${out}`));
    child.once('exit', onExit);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes(ready)) {
        child.off('exit', onExit);
        resolve();
      }
    });
  });
  child.stdout!.resume();
  return child;
}

/** A redis-server on 127.0.0.1:`port` without persistence, its files in `dir`. */
export const serverArgs = (port: number, dir: string): string[] => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  dir,
];
