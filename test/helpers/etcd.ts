// A throwaway single-member etcd (Debian's etcd-server, found on PATH; `npm test` installs it) on free local ports,
// its data in a temp directory removed again by stop(). put/del go through etcd's own JSON gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../../src/stores/etcd-client.ts';
import { freePort } from './ports.ts';
import { until } from './wait.ts';

export interface EtcdServer {
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly client: EtcdClient;
  readonly process: ChildProcess;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /**
   * Puts `key` attached to a new lease of `ttlSeconds` that is never kept alive: etcd deletes the key once the TTL
   * ends (what a registrar that died leaves). Resolves with the revision of the put.
   */
  putWithLease(key: string, value: string, ttlSeconds: number): Promise<number>;
  /** Kills the server (if still running) and removes its directory. */
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdServer> {
  // etcd cannot report a port 0 it bound: two ports picked free just before.
  const port = await freePort();
  const peer = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-etcd-'));
  const url = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child = spawn(
    'etcd',
    [
      '--name=test',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=test=${peerUrl}`,
      '--log-level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    out = (out + s).slice(-4000);
  });
  const client = new EtcdClient({ endpoints: [url], timeoutMs: 2000 });
  // Ready once it answers a read (etcd logs "ready to serve" at info only).
  const exited = once(child, 'exit').then(() => {
    throw new Error(`etcd exited (${child.exitCode}): ${out}`);
  });
  const ready = until(
    () =>
      client.range('/', true).then(
        () => true,
        () => false,
      ),
    `etcd to answer on ${url}`,
    10_000,
    50,
  );
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return {
    port,
    url,
    client,
    process: child,
    put: (key, value) => client.put(key, value),
    del: (key) => client.delete(key),
    async putWithLease(key, value, ttlSeconds) {
      // etcd's JSON gateway, as src/stores/etcd-client.ts speaks it (int64s as strings, bytes as base64).
      const call = async (path: string, body: object) => {
        const res = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
        if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
        return (await res.json()) as { ID?: string; header?: { revision?: string } };
      };
      const { ID } = await call('/v3/lease/grant', { TTL: ttlSeconds });
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const put = await call('/v3/kv/put', { key: b64(key), value: b64(value), lease: ID });
      return Number(put.header?.revision);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
