// Living with the access log on disk: SIGUSR1 reopens it after logrotate moved it (single process and workers),
// a file that cannot be written at run time is one logged error while serving goes on, and the gateway's own
// log names its levels and its version.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnGateway, untilWorkersStarted } from '../helpers/process.ts';
import { request, startEchoBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const countLines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0);
const parsed = (lines: string[]) =>
  lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

describe('access log rotation', () => {
  let echo: Backend;
  before(async () => {
    echo = await startEchoBackend('echo');
  });
  after(() => echo.close());

  const config = (extra: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: echo, match: { path: / }, upstream: echo }]
${extra}`;

  test('SIGUSR1 opens the file again under its name (logrotate), and opens no inspector', async () => {
    // A relative path: from the config file's folder, not the test's working directory.
    const gw = await spawnGateway(config('accessLog: { output: logs/access.log }'));
    const file = join(dirname(gw.file), 'logs', 'access.log');
    try {
      await request(gw.port(), '/before');
      await until(() => countLines(file) === 1, 'the first line');
      renameSync(file, `${file}.1`);
      gw.child.kill('SIGUSR1');
      await until(() => gw.logLines.some((l) => l.includes('log files reopened')), 'the reopen');
      await request(gw.port(), '/after');
      await until(() => countLines(file) === 1, 'a line in the new file');
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).path, '/after');
      assert.equal(JSON.parse(readFileSync(`${file}.1`, 'utf8')).path, '/before');
      assert.ok(!gw.logLines.some((l) => l.includes('Debugger listening')), 'SIGUSR1 must not open the inspector');
    } finally {
      assert.equal(await gw.stop(), 0);
    }
    // The gateway log: level names like the access log's, and what runs at start.
    const entries = parsed(gw.logLines);
    assert.ok(entries.length > 0 && entries.every((e) => typeof e.level === 'string'), gw.logLines.join('\n'));
    const started = entries.find((e) => e.msg === 'turnpike started');
    assert.ok(started, gw.logLines.join('\n'));
    assert.equal(started.version, VERSION);
    assert.equal(started.configVersion, 1);
  });

  test('with workers, the primary passes SIGUSR1 on to every worker', async () => {
    const gw = await spawnGateway(config('workers: 2\naccessLog: { output: access.log }'));
    const file = join(dirname(gw.file), 'access.log');
    try {
      await untilWorkersStarted(gw);
      await request(gw.port(), '/before');
      await until(() => countLines(file) === 1, 'the first line');
      renameSync(file, `${file}.1`);
      gw.child.kill('SIGUSR1');
      await until(
        () => gw.logLines.filter((l) => l.includes('log files reopened')).length === 2,
        'both workers reopening',
      );
      for (let i = 0; i < 4; i++) await request(gw.port(), '/after', { agent: false });
      await until(() => countLines(file) === 4, 'the new file getting every line');
      assert.equal(countLines(`${file}.1`), 1);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });

  test('a folder gone at run time: one error, serving goes on, and the file is back within seconds', async () => {
    const gw = await spawnGateway(config('accessLog: { output: logs/access.log }'));
    const folder = join(dirname(gw.file), 'logs');
    const file = join(folder, 'access.log');
    try {
      await request(gw.port(), '/before');
      await until(() => countLines(file) === 1, 'the first line');
      // The folder is removed and a file takes its name: the access log cannot be opened there any more.
      rmSync(folder, { recursive: true });
      writeFileSync(folder, 'not a folder');
      gw.child.kill('SIGUSR1');
      await until(() => gw.logLines.some((l) => l.includes('access log cannot be written')), 'the error');
      for (let i = 0; i < 3; i++) assert.equal((await request(gw.port(), `/lost${i}`)).status, 200);
      rmSync(folder);
      await until(
        () => parsed(gw.logLines).find((e) => e.msg === 'access log written again'),
        'the file written again',
        15_000,
      );
      await request(gw.port(), '/after');
      await until(() => countLines(file) >= 1 && readFileSync(file, 'utf8').includes('/after'), 'the line after');
      const back = parsed(gw.logLines).find((e) => e.msg === 'access log written again')!;
      assert.equal(back.lost, 3);
      assert.equal(parsed(gw.logLines).filter((e) => String(e.msg).startsWith('access log cannot')).length, 1);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });

  test('a file that cannot be written is one logged error; serving goes on and stop exits cleanly', async () => {
    // /dev/full takes the open and fails every write with ENOSPC: a full disk.
    const gw = await spawnGateway(config('accessLog: { output: /dev/full }'));
    try {
      for (let i = 0; i < 50; i++) assert.equal((await request(gw.port(), `/r${i}`)).status, 200);
      await until(() => gw.logLines.some((l) => l.includes('access log cannot be written')), 'the error', 5000);
      for (let i = 0; i < 50; i++) assert.equal((await request(gw.port(), `/s${i}`)).status, 200);
      const errors = parsed(gw.logLines).filter((e) => String(e.msg).startsWith('access log cannot be written'));
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.level, 'error');
      assert.equal(errors[0]!.code, 'ENOSPC');
    } finally {
      // Before: the exit hook retried the lost bytes forever (a hung stop, a spinning CPU).
      assert.equal(await gw.stop(5000), 0);
    }
  });
});
