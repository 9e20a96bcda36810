import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { json, request, startEchoBackend, startGatewayYaml, type Backend } from './helpers/servers.ts';

function configFor(version: number, backends: Backend[]): string {
  // Each version changes something real: the header value, the set of targets, the routes.
  const targets = backends.slice(0, 1 + (version % backends.length)).map((b) => `{ url: "${b.url}" }`).join(', ');
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
    const worker = async () => {
      while (running) {
        try {
          const res = await client.request({ path: '/load', method: 'GET' });
          const text = await res.body.text();
          if (res.statusCode === 200 && text.includes('"name"')) {
            ok++;
            versions.add(String(res.headers['x-config-version']));
          } else failures.push(`${res.statusCode} ${text.slice(0, 100)}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    for (let v = 1; v <= 20; v++) {
      await sleep(100);
      writeFileSync(gateway.file, configFor(v, backends));
      const result = await gateway.reloader!.reload('test');
      assert.equal(result.ok, true, result.error);
    }
    await sleep(200);
    running = false;
    await Promise.all(workers);
    await client.close();
    console.log(`reload under load: ${ok} requests, ${failures.length} errors, ${versions.size} config versions seen`);
    assert.deepEqual(failures, []);
    assert.ok(ok > 1000, `expected a steady load, got ${ok} requests`);
    assert.ok(versions.size >= 10, `responses should come from many config versions, saw ${versions.size}`);
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
    const { startBackend } = await import('./helpers/servers.ts');
    const slow = await startBackend((_req, res) => setTimeout(() => res.end('slow done'), 600));
    try {
      writeFileSync(gateway.file, configFor(5, [slow]));
      assert.equal((await gateway.reloader!.reload('test')).ok, true);
      const pending = request(port, '/slow');
      await sleep(100);
      writeFileSync(gateway.file, configFor(6, backends));
      assert.equal((await gateway.reloader!.reload('test')).ok, true);
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
      let version: unknown;
      for (let i = 0; i < 50 && version !== '7'; i++) {
        await sleep(50);
        version = (await request(wport, '/w')).headers['x-config-version'];
      }
      assert.equal(version, '7');
    } finally {
      await watched.stop();
    }
  });
});
