// The config watcher follows a Kubernetes ConfigMap update: the kubelet writes the new files into a fresh
// `..<timestamp>` folder, renames a new `..data` symlink over the old one (atomic), then deletes the old folder.
// `turnpike.yaml` is a symlink to `..data/turnpike.yaml` whose own name never changes, so a watcher that only
// listens for events about that name never reloads. A real directory laid out as the kubelet lays it out.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startGateway, type Gateway } from '../../src/runtime/gateway.ts';
import { nextEvent } from '../helpers/events.ts';
import { quietLog, request, tempDir } from '../helpers/servers.ts';

const yaml = (version: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: v, match: { path: / }, respond: { body: "${version}" } }]
accessLog: { enabled: false }
`;

/** What the kubelet does: new timestamped folder, `..data_tmp` symlink to it renamed over `..data`, old folder gone. */
function publish(dir: string, stamp: string, text: string, previous: string | null): void {
  mkdirSync(join(dir, stamp));
  writeFileSync(join(dir, stamp, 'turnpike.yaml'), text);
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (previous !== null) rmSync(join(dir, previous), { recursive: true });
}

let dir: string;
let gateway: Gateway;

before(async () => {
  dir = tempDir();
  publish(dir, '..2026_01_01_00_00_00.1', yaml('v1'), null);
  symlinkSync('..data/turnpike.yaml', join(dir, 'turnpike.yaml'));
  gateway = await startGateway({ configFile: join(dir, 'turnpike.yaml'), log: quietLog, watch: true });
});
after(() => gateway.stop());

const reloaded = () => nextEvent('turnpike:reload', gateway.runtime.gateway, (e) => e.ok === true, 'a reload');

test('a ConfigMap update (the ..data symlink swapped) reloads, and so does the one after it', async () => {
  const port = gateway.port();
  assert.equal((await request(port, '/')).body, 'v1');
  let done = reloaded();
  publish(dir, '..2026_01_01_00_01_00.2', yaml('v2'), '..2026_01_01_00_00_00.1');
  await done;
  assert.equal((await request(port, '/')).body, 'v2');
  // The folder the file lived in is gone: the watcher must have followed the swap to the new one.
  done = reloaded();
  publish(dir, '..2026_01_01_00_02_00.3', yaml('v3'), '..2026_01_01_00_01_00.2');
  await done;
  assert.equal((await request(port, '/')).body, 'v3');
});
