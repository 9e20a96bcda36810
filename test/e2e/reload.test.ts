import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import { json, request, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

function configFor(version: number, backends: Backend[]): string {
  // Each version changes something real: the header value, the set of targets, the routes.
  const targets = backends
    .slice(0, 1 + (version % backends.length))
    .map((b) => `{ url: "${b.url}" }`)
    .join(', ');
  return `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [${targets}] }
routes:
  - name: app
    match: { path: / }
    upstream: app
    plugins:
      - headers: { response: { set: { x-config-version: "${version}" } } }
${version % 2 === 0 ? '  - { name: extra, match: { path: /extra }, respond: { body: "extra" } }' : ''}
`;
}

describe('reload', () => {
  let backends: Backend[];
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;

  before(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map(startEchoBackend));
    gateway = await startGatewayYaml(configFor(0, backends));
    port = gateway.port();
  });

  after(async () => {
    await gateway.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('20 reloads under steady load lose no request', async () => {
    const client = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
    let ok = 0;
    const failures: string[] = [];
    const versions = new Set<string>();
    let running = true;
    // Each reload waits for a batch of answers since the last one, so every version serves while others load.
    const BATCH = 50;
    let waiting: { readonly count: number; readonly resolve: () => void } | null = null;
    const answers = (count: number) =>
      new Promise<void>((resolve) => {
        if (ok >= count) resolve();
        else waiting = { count, resolve };
      });
    const worker = async () => {
      while (running) {
        try {
          const res = await client.request({ path: '/load', method: 'GET' });
          const text = await res.body.text();
          if (res.statusCode === 200 && text.includes('"name"')) {
            ok++;
            versions.add(String(res.headers['x-config-version']));
            if (waiting !== null && ok >= waiting.count) {
              waiting.resolve();
              waiting = null;
            }
          } else failures.push(`${res.statusCode} ${text.slice(0, 100)}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    for (let v = 1; v <= 20; v++) {
      await answers(ok + BATCH);
      writeFileSync(gateway.file, configFor(v, backends));
      const result = await gateway.reloader!.reload('test');
      assert.equal(result.ok, true, result.error);
    }
    await answers(ok + BATCH);
    running = false;
    await Promise.all(workers);
    await client.close();
    console.log(`reload under load: ${ok} requests, ${failures.length} errors, ${versions.size} config versions seen`);
    assert.deepEqual(failures, []);
    // A batch is more than the requests in flight at a swap, so every version (0 to 20) answered some.
    assert.equal(versions.size, 21, `responses came from versions ${[...versions].sort().join(', ')}`);
  });

  test('an invalid config is refused and the old one keeps serving', async () => {
    writeFileSync(gateway.file, configFor(3, backends));
    assert.equal((await gateway.reloader!.reload('test')).ok, true);
    writeFileSync(gateway.file, configFor(4, backends).replace('upstream: app', 'upstream: missing'));
    const result = await gateway.reloader!.reload('test');
    assert.equal(result.ok, false);
    assert.match(result.error!, /TP_CONFIG_BAD_REFERENCE/);
    const r = await request(port, '/still');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-config-version'], '3');
  });

  test('a request in flight during a reload that removes its target still completes', async () => {
    const { startBackend } = await import('../helpers/servers.ts');
    // Answers only once the test has reloaded, so the request is surely in flight across the reload.
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const slow = await startBackend((_req, res) => {
      arrived();
      void released.then(() => res.end('slow done'));
    });
    try {
      writeFileSync(gateway.file, configFor(5, [slow]));
      assert.equal((await gateway.reloader!.reload('test')).ok, true);
      const pending = request(port, '/slow');
      await reached;
      writeFileSync(gateway.file, configFor(6, backends));
      assert.equal((await gateway.reloader!.reload('test')).ok, true);
      release();
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow done');
      // New requests go to the new targets.
      assert.ok(['a', 'b', 'c'].includes(json(await request(port, '/x')).name));
    } finally {
      await slow.close();
    }
  });

  test('a change to the config file is picked up when watching', async () => {
    const watched = await startGatewayYaml(configFor(1, backends), { watch: true });
    try {
      const wport = watched.port();
      assert.equal((await request(wport, '/w')).headers['x-config-version'], '1');
      writeFileSync(watched.file, configFor(7, backends));
      // The watcher tells no one: ask until the new version answers.
      await until(
        async () => (await request(wport, '/w')).headers['x-config-version'] === '7',
        'version 7 after the file changed',
      );
    } finally {
      await watched.stop();
    }
  });
});
