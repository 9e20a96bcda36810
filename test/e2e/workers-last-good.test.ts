// Issue 17: with workers, a refused reload used to hold only until a worker died: its replacement read the broken
// file, failed to start, and was replaced again (restarts went 4 -> 9 in 7 s) until the file was fixed. The primary
// now hands each worker the config text it last accepted; a worker never reads the file itself.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { childPids, spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { freePort } from '../helpers/ports.ts';
import { until } from '../helpers/wait.ts';

const WAIT_MS = 10_000;

let port: number;
const config = (marker: string) => `
workers: 2
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: ${port} }]
routes: [{ name: m, match: { path: / }, respond: { body: "${marker}" } }]
accessLog: { enabled: false }
`;

/** One request on a connection of its own (the kernel spreads them over both workers' sockets). */
const get = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });

/** The primary's own log lines with this message (workers log "config reloaded" too). */
const primaryLines = (gw: GatewayProcess, msg: string) =>
  gw.logLines.filter((l) => l.includes(`"msg":"${msg}"`) && JSON.parse(l).pid === gw.pid);

let gw: GatewayProcess;
before(async () => {
  // A fixed port: with port 0 the cluster primary holds the socket and drops it when its last worker dies.
  port = await freePort();
  gw = await spawnGateway(config('good'));
  await untilWorkersStarted(gw, WAIT_MS);
});
after(async () => assert.equal(await gw.stop(), 0));

test('after a refused reload, workers started later run the last good config and restarts do not climb', async () => {
  writeFileSync(gw.file, 'listeners: [ this is not yaml\n');
  gw.child.kill('SIGHUP');
  await until(() => primaryLines(gw, 'config reload failed; keeping the running config').length === 1, 'the refusal');
  // Both workers die: every answer after this comes from a worker started after the refusal.
  const victims = childPids(gw.pid);
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  await until(
    () => {
      const now = childPids(gw.pid);
      return now.length === 2 && now.every((pid) => !victims.includes(pid));
    },
    'two replacement workers',
    WAIT_MS,
  );
  const replacements = childPids(gw.pid);
  await until(
    () =>
      replacements.every((pid) =>
        gw.logLines.some((l) => l.includes('"turnpike started"') && l.includes(`"pid":${pid},`)),
      ),
    'both replacements to start',
    WAIT_MS,
  );
  for (let i = 0; i < 20; i++) assert.equal(await get(port), '200 good');
  // Two deaths (the kills), no more: a replacement that read the broken file would have died and been replaced.
  assert.equal(primaryLines(gw, 'worker died; starting a new one').length, 2);
  assert.deepEqual(childPids(gw.pid).sort(), replacements.sort());
  assert.equal(primaryLines(gw, 'replacement worker failed').length, 0);

  // Once the file is fixed, a reload reaches the replacements as any worker.
  writeFileSync(gw.file, config('fixed'));
  gw.child.kill('SIGHUP');
  await until(() => primaryLines(gw, 'config reloaded').length === 1, 'the reload of the fixed file', WAIT_MS);
  for (let i = 0; i < 4; i++) assert.equal(await get(port), '200 fixed');
});
