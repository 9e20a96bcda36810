// The config kept in a store: `turnpike start --config etcd://...` (with workers: the primary reads and watches
// the key) and `--config redis://...?key=...` (one process) read it, validate it as a file, follow it, and swap on
// change with no failed request; `turnpike push` refuses an invalid file with its problems and publishes a valid
// one; an invalid config written to the key directly is refused (logged at its key path) and the last good one
// keeps serving; turnpike_config_info and /api/config say where the config came from and the hash of its text.
// Real etcd and redis-server, the CLI as child processes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { CLI, spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis.ts';
import { freePort } from '../helpers/ports.ts';
import { request, startEchoBackend, tempDir, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const WAIT_MS = 10_000;
const run = promisify(execFile);

function config(echo: string, adminPort: number, marker: string, workers = 1): string {
  return `workers: ${workers}
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echo}" }] } }
routes:
  - name: echo
    match: { path: / }
    upstream: echo
    plugins: [{ headers: { response: { set: { x-marker: "${marker}" } } } }]
admin: { address: 127.0.0.1, port: ${adminPort} }
metrics: {}
accessLog: { enabled: false }
`;
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** `turnpike push FILE --to URL` as a user runs it: its exit code and output. */
async function push(text: string, to: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(tempDir(), 'turnpike.yaml');
  writeFileSync(file, text);
  try {
    const { stdout, stderr } = await run(process.execPath, [...NODE_FLAGS, CLI, 'push', file, '--to', to]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Steady requests on kept-alive connections; each answer's x-marker, every failure. */
function load(port: number) {
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 8 });
  const stats = { ok: 0, failures: [] as string[], markers: [] as string[] };
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const res = await client.request({ path: '/x', method: 'GET' });
        await res.body.text();
        if (res.statusCode === 200) {
          stats.ok++;
          stats.markers.push(String(res.headers['x-marker']));
        } else stats.failures.push(String(res.statusCode));
      } catch (err) {
        stats.failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: 8 }, loop);
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      await client.close();
    },
  };
}

async function marker(port: number): Promise<string> {
  return String((await request(port, '/x')).headers['x-marker']);
}

/** The one a store behaves alike in: start from it, push, refuse, report. */
function storeCases(
  name: string,
  setup: () => Promise<{ url: string; raw: (text: string) => Promise<void>; read: () => Promise<string | null> }>,
  workers: number,
) {
  describe(`config from ${name}${workers > 1 ? ` (workers: ${workers})` : ''}`, () => {
    let echo: Backend;
    let store: Awaited<ReturnType<typeof setup>>;
    let gw: GatewayProcess;
    let adminPort: number;
    const reloads = (msg: string) =>
      gw.logLines.filter((l) => l.includes(`"msg":"${msg}`) && JSON.parse(l).pid === gw.pid).length;

    before(async () => {
      echo = await startEchoBackend('echo');
      store = await setup();
      adminPort = await freePort();
      const pushed = await push(config(echo.url, adminPort, 'v1', workers), store.url);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stdout, new RegExp(`hash ${hashOf(config(echo.url, adminPort, 'v1', workers))}`));
      gw = await spawnGateway('', { config: store.url, listeners: 2 });
      if (workers > 1) await untilWorkersStarted(gw, WAIT_MS);
    });

    after(async () => {
      assert.equal(await gw.stop(), 0);
      await echo.close();
    });

    test('the config is read from the store; a pushed one is swapped in with no failed request', async () => {
      assert.equal(await marker(gw.port('web')), 'v1');
      const before = reloads('config reloaded');
      const l = load(gw.port('web'));
      await until(() => l.stats.ok >= 20, 'answers before the push', WAIT_MS);
      const text = config(echo.url, adminPort, 'v2', workers);
      assert.equal((await push(text, store.url)).code, 0);
      await until(() => reloads('config reloaded') > before, 'the reload the push causes', WAIT_MS);
      const seen = l.stats.ok;
      await until(() => l.stats.ok >= seen + 20, 'answers after the reload', WAIT_MS);
      await l.stop();
      assert.deepEqual(l.stats.failures, []);
      assert.equal(l.stats.markers.at(-1), 'v2');
      assert.equal(await marker(gw.port('web')), 'v2');

      const metrics = (await request(adminPort, '/metrics')).body;
      const info = /^turnpike_config_info\{(.*)\} 1$/m.exec(metrics)?.[1] ?? '';
      assert.match(info, new RegExp(`hash="${hashOf(text)}"`));
      assert.match(info, new RegExp(`source="${store.url.replace(/[?]/g, '\\?')}"`));
      const api = JSON.parse((await request(adminPort, '/api/config')).body) as { source: string; hash: string };
      assert.deepEqual([api.source, api.hash], [store.url, hashOf(text)]);
    });

    test('turnpike push refuses an invalid file with its problems (exit 1) and writes nothing', async () => {
      const stored = await store.read();
      const bad = config(echo.url, adminPort, 'v3', workers).replace('port: 0 }', 'port: nope }');
      const r = await push(bad, store.url);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error: .*turnpike\.yaml:2:\d+ listeners\[0\]\.port: /);
      assert.equal(await store.read(), stored);
    });

    test('an invalid config written to the key is refused at its key path; the last good one keeps serving', async () => {
      const before = reloads('config reload failed');
      await store.raw(config(echo.url, adminPort, 'v4', workers).replace('port: 0 }', 'port: nope }'));
      await until(() => reloads('config reload failed') > before, 'the refused reload', WAIT_MS);
      const line = gw.logLines.filter((l) => l.includes('"msg":"config reload failed')).at(-1)!;
      assert.match(JSON.parse(line).error, /listeners\[0\]\.port/);
      assert.match(JSON.parse(line).error, new RegExp(`^${store.url.replace(/[?]/g, '\\?')}:2:`));
      assert.equal(await marker(gw.port('web')), 'v2');
      // A good one after it is taken again.
      await store.raw(config(echo.url, adminPort, 'v5', workers));
      await until(async () => (await marker(gw.port('web'))) === 'v5', 'the next good config', WAIT_MS);
    });
  });
}

let etcd: EtcdServer;
let redis: RedisServer;
let redisClient: Redis;
after(async () => {
  redisClient?.disconnect();
  await etcd?.stop();
  await redis?.stop();
});

storeCases(
  'etcd',
  async () => {
    etcd = await startEtcd();
    const key = '/turnpike/config';
    return {
      url: `etcd://127.0.0.1:${etcd.port}${key}`,
      raw: (text) => etcd.put(key, text),
      read: async () => (await etcd.client.get(key)).value ?? null,
    };
  },
  2,
);

storeCases(
  'Redis',
  async () => {
    redis = await startRedisServer();
    redisClient = new Redis(redis.url);
    return {
      url: `redis://127.0.0.1:${redis.port}/0?key=turnpike:config`,
      raw: async (text) => void (await redisClient.set('turnpike:config', text)),
      read: () => redisClient.get('turnpike:config'),
    };
  },
  1,
);
