// A throwaway Sentinel-watched Redis: a master, one replica and three sentinels (`redis-server --sentinel`), all
// on 127.0.0.1 with free ports, quick to notice a dead master (down-after 1 s) so a test can watch a failover.
// Ready means: the replica is in sync and every sentinel knows the replica and the two other sentinels.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';
import { serverArgs, spawnRedis } from './redis.ts';
import { until } from './wait.ts';

export const MASTER_NAME = 'mymaster';

export interface RedisNode {
  readonly port: number;
  readonly process: ChildProcess;
}

export interface SentinelSet {
  readonly master: RedisNode;
  readonly replica: RedisNode;
  readonly sentinels: readonly RedisNode[];
  /** "127.0.0.1:PORT" of each sentinel, as `stores.redis.sentinels` takes them. */
  readonly sentinelAddresses: readonly string[];
  /** "host:port" of the master, as the first sentinel names it now. */
  masterAddress(): Promise<string>;
  /** A plain client of the node at "host:port" (closed by stop()). */
  clientOf(address: string): Redis;
  /** Kills every process still running, closes the clients and removes the directory. */
  stop(): Promise<void>;
}

export async function startSentinelSet(
  options: { downAfterMs?: number; failoverTimeoutMs?: number } = {},
): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-sentinel-'));
  const processes: ChildProcess[] = [];
  const clients: Redis[] = [];
  const clientOf = (address: string): Redis => {
    const [host, port] = [
      address.slice(0, address.lastIndexOf(':')),
      Number(address.slice(address.lastIndexOf(':') + 1)),
    ];
    const client = new Redis(port, host, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    client.on('error', () => {}); // a node the test killed
    clients.push(client);
    return client;
  };
  const stop = async () => {
    for (const c of clients) c.disconnect();
    for (const p of processes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await once(p, 'exit');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // redis-server cannot report a port 0 it bound: pick free ones first.
    const masterPort = await freePort();
    const master = { port: masterPort, process: await spawnRedis(serverArgs(masterPort, dir), 'Ready to accept') };
    processes.push(master.process);
    const replicaPort = await freePort();
    const replicaArgs = [
      ...serverArgs(replicaPort, mkdir(dir, 'replica')),
      '--replicaof',
      '127.0.0.1',
      String(masterPort),
    ];
    const replica = { port: replicaPort, process: await spawnRedis(replicaArgs, 'Ready to accept') };
    processes.push(replica.process);

    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(mkdir(dir, `sentinel-${i}`), 'sentinel.conf'); // sentinels rewrite their config file
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${join(dir, `sentinel-${i}`)}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${MASTER_NAME} ${options.failoverTimeoutMs ?? 5000}`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      const process = await spawnRedis([conf, '--sentinel'], '+monitor master');
      processes.push(process);
      sentinels.push({ port, process });
    }
    const sentinelAddresses = sentinels.map((s) => `127.0.0.1:${s.port}`);

    const replicaClient = clientOf(`127.0.0.1:${replicaPort}`);
    await until(
      async () => (await replicaClient.info('replication')).includes('master_link_status:up'),
      'the replica in sync',
      10_000,
      50,
    );
    const sentinelClients = sentinelAddresses.map(clientOf);
    // Sentinels find the replica (INFO of the master) and each other (hello messages) on their own: every 1-2 s.
    await until(
      async () => {
        for (const s of sentinelClients) {
          const fields = (await s.call('SENTINEL', 'MASTER', MASTER_NAME)) as string[];
          const at = (k: string) => fields[fields.indexOf(k) + 1];
          if (at('num-slaves') !== '1' || at('num-other-sentinels') !== '2') return false;
        }
        return true;
      },
      'every sentinel to know the replica and the other sentinels',
      20_000,
      100,
    );
    return {
      master,
      replica,
      sentinels,
      sentinelAddresses,
      async masterAddress() {
        const [host, port] = (await sentinelClients[0]!.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [
          string,
          string,
        ];
        return `${host}:${port}`;
      },
      clientOf,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function mkdir(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return path;
}
