// test/provision.ts, which `npm test` runs first: installs the programs the tests spawn as root, or says how to.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath, provision, TEST_PROGRAMS, type ProvisionHost, type TestProgram } from '../provision.ts';
import { after, describe, it } from 'node:test';

const PROGRAMS: TestProgram[] = [
  { binary: 'redis-server', apt: 'redis-server', usedBy: 'redis tests' },
  { binary: 'openssl', apt: 'openssl', usedBy: 'tls tests' },
];

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A directory holding executables with these names (empty scripts). */
function binDir(...names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-provision-'));
  dirs.push(dir);
  for (const name of names) executable(dir, name);
  return dir;
}

function executable(dir: string, name: string): void {
  writeFileSync(join(dir, name), '#!/bin/sh\n');
  chmodSync(join(dir, name), 0o755);
}

/** A host whose apt-get is recorded and, on `install`, puts the packages' binaries into `dir`. */
function fakeHost(dir: string, uid: number, aptCode = 0): ProvisionHost & { said: string[]; apt: string[][] } {
  const said: string[] = [];
  const apt: string[][] = [];
  return {
    path: dir,
    uid,
    said,
    apt,
    aptGet(args) {
      apt.push([...args]);
      if (aptCode !== 0) return { code: aptCode, output: 'E: Unable to locate package redis-server' };
      if (args[0] === 'install') for (const p of PROGRAMS) if (args.includes(p.apt)) executable(dir, p.binary);
      return { code: 0, output: '' };
    },
    say: (line) => said.push(line),
  };
}

describe('test provisioning', () => {
  it('finds a program only as an executable file in a PATH directory', () => {
    const dir = binDir('openssl');
    writeFileSync(join(dir, 'redis-server'), 'not executable');
    assert.equal(findOnPath('openssl', `/nonexistent::${dir}`), join(dir, 'openssl'));
    assert.equal(findOnPath('redis-server', dir), undefined);
  });

  it('says nothing and runs nothing when every program is on PATH', () => {
    const host = fakeHost(binDir('redis-server', 'openssl', 'apt-get'), 0);
    assert.equal(provision(host, PROGRAMS), 0);
    assert.deepEqual(host.said, []);
    assert.deepEqual(host.apt, []);
  });

  it('as a user, prints the exact install command for what is missing and stops', () => {
    const host = fakeHost(binDir('openssl', 'apt-get'), 1000);
    assert.equal(provision(host, PROGRAMS), 1);
    assert.deepEqual(host.apt, []);
    assert.equal(host.said.length, 1);
    assert.match(host.said[0]!, /redis-server \(redis tests\)/);
    assert.ok(
      host.said[0]!.endsWith('Install with: sudo apt-get update && sudo apt-get install -y redis-server'),
      host.said[0],
    );
  });

  it('as root, installs the missing packages with apt-get after one line saying so', () => {
    const dir = binDir('apt-get');
    const host = fakeHost(dir, 0);
    assert.equal(provision(host, PROGRAMS), 0);
    assert.deepEqual(host.said, [
      'Installing redis-server openssl for the tests: apt-get update && apt-get install -y redis-server openssl',
    ]);
    assert.deepEqual(host.apt, [
      ['update', '-qq'],
      ['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=120', 'redis-server', 'openssl'],
    ]);
  });

  it("as root, stops with apt-get's output when it fails", () => {
    const host = fakeHost(binDir('apt-get', 'openssl'), 0, 100);
    assert.equal(provision(host, PROGRAMS), 1);
    assert.equal(host.apt.length, 1);
    assert.match(host.said.at(-1)!, /^apt-get update failed \(exit 100\):\nE: Unable to locate package redis-server$/);
  });

  it('as root without apt-get, says what is missing and stops', () => {
    const host = fakeHost(binDir('openssl'), 0);
    assert.equal(provision(host, PROGRAMS), 1);
    assert.deepEqual(host.apt, []);
    assert.deepEqual(host.said, [
      'The tests need redis-server (redis tests), not found on PATH, and there is no apt-get to install them with',
    ]);
  });

  it('runs as a script: silent, exit 0, when the programs are on PATH', () => {
    const script = fileURLToPath(new URL('../provision.ts', import.meta.url));
    const res = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      env: { PATH: binDir(...TEST_PROGRAMS.map((p) => p.binary)) }, // whatever the list holds today
    });
    assert.equal(res.stderr, '');
    assert.equal(res.stdout, '');
    assert.equal(res.status, 0);
  });
});
