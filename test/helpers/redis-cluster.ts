// A throwaway Redis Cluster: three masters (no replicas) on 127.0.0.1 with free ports, their slots assigned by
// `redis-cli --cluster create`; ready when every node says cluster_state:ok.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';
import { serverArgs, spawnRedis } from './redis.ts';
import type { RedisNode } from './redis-sentinel.ts';
import { until } from './wait.ts';

export interface RedisClusterSet {
  readonly nodes: readonly RedisNode[];
  /** "127.0.0.1:PORT" of each node, as `stores.redis.cluster` takes them. */
  readonly addresses: readonly string[];
  /** Kills the nodes and removes the directory. */
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<RedisClusterSet> {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-cluster-'));
  const nodes: RedisNode[] = [];
  const stop = async () => {
    for (const { process: p } of nodes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await once(p, 'exit');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort(); // redis-server cannot report a port 0 it bound
      const nodeDir = join(dir, `node-${i}`);
      mkdirSync(nodeDir);
      const args = [...serverArgs(port, nodeDir), '--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'];
      nodes.push({ port, process: await spawnRedis(args, 'Ready to accept') });
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await promisify(execFile)('redis-cli', [
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const clients = nodes.map((n) => new Redis(n.port, '127.0.0.1', { maxRetriesPerRequest: 0 }));
    try {
      // Each node learns the others' slots by gossip: wait until all of them agree the cluster is whole.
      await until(
        async () =>
          (await Promise.all(clients.map((c) => c.cluster('INFO')))).every((i) => i.includes('cluster_state:ok')),
        'cluster_state:ok on every node',
        20_000,
        50,
      );
    } finally {
      for (const c of clients) c.disconnect();
    }
    return { nodes, addresses, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
