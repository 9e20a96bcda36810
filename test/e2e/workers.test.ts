import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { spawnGateway, type GatewayProcess, untilWorkersStarted } from '../helpers/process.ts';
import { startEchoBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

/** How long to wait for the gateway processes (a fork, a reload fanned out to every worker). */
const WAIT_MS = 10_000;

function config(echoUrl: string, marker: string, workers: number | 'auto' = 2): string {
  return `
workers: ${workers}
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echoUrl}" }] } }
routes:
  - name: echo
    match: { path: / }
    upstream: echo
    plugins: [{ headers: { response: { set: { x-marker: "${marker}" } } } }]
`;
}

function childPids(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(/\s+/).map(Number);
}

/**
 * Steady load over fresh and kept-alive connections; returns counters and a stop function. Each answer's
 * x-marker is kept with the time its request was sent.
 */
function load(port: number) {
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 16, pipelining: 1 });
  const stats = { ok: 0, failures: [] as string[], answers: [] as { sent: number; marker: string }[] };
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const sent = performance.now();
        const res = await client.request({ path: '/w', method: 'GET' });
        await res.body.text();
        if (res.statusCode === 200) {
          stats.ok++;
          stats.answers.push({ sent, marker: String(res.headers['x-marker']) });
        } else stats.failures.push(String(res.statusCode));
      } catch (err) {
        stats.failures.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(workers);
      await client.close();
    },
  };
}

describe('workers', () => {
  let echo: Backend;
  let gw: GatewayProcess;

  before(async () => {
    echo = await startEchoBackend('echo');
    gw = await spawnGateway(config(echo.url, 'v0'));
    await untilWorkersStarted(gw, WAIT_MS);
  });

  after(async () => {
    assert.equal(await gw.stop(), 0, 'SIGTERM drains every worker and the primary exits 0');
    await until(() => !existsPid(gw.pid), 'the primary to exit', WAIT_MS);
    await echo.close();
  });

  test('workers: 2 runs two worker processes sharing one listener', async () => {
    assert.equal(childPids(gw.pid).length, 2);
    const l = load(gw.port());
    // Enough requests to cross both workers, however busy the machine is (a count, not a time box).
    await until(() => l.stats.ok >= 100 || l.stats.failures.length > 0, '100 answers', WAIT_MS);
    await l.stop();
    assert.deepEqual(l.stats.failures, []);
    assert.ok(l.stats.ok >= 100);
  });

  test('a reload reaches every worker with zero failed requests', async () => {
    // Each worker logs "config reloaded" as well, so only the primary's line says every worker has the config.
    const primaryReloads = () =>
      gw.logLines.filter((line) => line.includes('"msg":"config reloaded"') && JSON.parse(line).pid === gw.pid).length;
    const before = primaryReloads();
    const l = load(gw.port());
    let reported = 0;
    for (let v = 1; v <= 5; v++) {
      await sleep(150);
      writeFileSync(gw.file, config(echo.url, `v${v}`));
      gw.child.kill('SIGHUP');
      await until(() => primaryReloads() >= before + v, `the primary to report reload ${v}`, WAIT_MS);
      reported = performance.now();
    }
    await sleep(500);
    await l.stop();
    assert.deepEqual(l.stats.failures, []);
    // Every request sent after the primary reported the last reload is answered by its config, whichever worker.
    const after = l.stats.answers.filter((a) => a.sent > reported);
    assert.ok(after.length >= 10, `${after.length} answers after the last reload`);
    assert.deepEqual(new Set(after.map((a) => a.marker)), new Set(['v5']));
  });

  test('a worker that crashes is restarted and counted', async () => {
    const [victim] = childPids(gw.pid);
    process.kill(victim!, 'SIGKILL');
    await until(() => gw.logLines.some((l) => l.includes('worker died')), 'the primary to notice', WAIT_MS);
    await until(
      () => childPids(gw.pid).length === 2 && !childPids(gw.pid).includes(victim!),
      'a replacement worker',
      WAIT_MS,
    );
    const died = JSON.parse(gw.logLines.find((l) => l.includes('worker died'))!);
    assert.equal(died.restarts, 1);
    const l = load(gw.port());
    await sleep(300);
    await l.stop();
    assert.deepEqual(l.stats.failures, []);
  });
});

function existsPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
