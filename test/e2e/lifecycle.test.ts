import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnGateway } from '../helpers/process.ts';
import { request, startBackend, startEchoBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

function config(slowUrl: string, echoUrl: string, marker: string): string {
  return `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  slow: { targets: [{ url: "${slowUrl}" }] }
  echo: { targets: [{ url: "${echoUrl}" }] }
routes:
  - { name: slow, match: { path: /slow }, upstream: slow }
  - name: echo
    match: { path: / }
    upstream: echo
    plugins: [{ headers: { response: { set: { x-marker: "${marker}" } } } }]
shutdown: { drainTimeout: 5s }
`;
}

describe('lifecycle', () => {
  let slow: Backend, echo: Backend;
  before(async () => {
    slow = await startBackend((_req, res) => setTimeout(() => res.end('finished'), 800));
    echo = await startEchoBackend('echo');
  });
  after(async () => {
    await Promise.all([slow.close(), echo.close()]);
  });

  test('SIGTERM stops accepting, lets in-flight requests finish, and exits 0', async () => {
    const gw = await spawnGateway(config(slow.url, echo.url, 'one'));
    const port = gw.port();
    const inFlight = [request(port, '/slow'), request(port, '/slow', { agent: false })];
    await sleep(200);
    const exited = gw.stop();
    await sleep(100);
    await assert.rejects(request(port, '/', { agent: false }), /ECONNREFUSED|ECONNRESET/);
    const results = await Promise.all(inFlight);
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'finished');
    }
    assert.equal(await exited, 0);
  });

  test('SIGHUP reloads the config file', async () => {
    const gw = await spawnGateway(config(slow.url, echo.url, 'one'));
    try {
      const port = gw.port();
      assert.equal((await request(port, '/')).headers['x-marker'], 'one');
      writeFileSync(gw.file, config(slow.url, echo.url, 'two'));
      gw.child.kill('SIGHUP');
      let marker: unknown;
      for (let i = 0; i < 40 && marker !== 'two'; i++) {
        await sleep(50);
        marker = (await request(port, '/')).headers['x-marker'];
      }
      assert.equal(marker, 'two');
      assert.ok(gw.logLines.some((l) => l.includes('config reloaded')));
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });

  test('a broken config on SIGHUP is logged and the old config keeps serving', async () => {
    const gw = await spawnGateway(config(slow.url, echo.url, 'one'));
    try {
      const port = gw.port();
      writeFileSync(gw.file, 'listeners: [ { name: web, protocol: http, port: "x" } ]\nbogus: 1\n');
      gw.child.kill('SIGHUP');
      const failure = await until(
        () => gw.logLines.find((l) => l.includes('reload failed')),
        'the reload failure to be logged',
        2000,
      );
      assert.match(failure, /turnpike\.yaml:\d+:\d+/);
      assert.equal((await request(port, '/')).headers['x-marker'], 'one');
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });
});
