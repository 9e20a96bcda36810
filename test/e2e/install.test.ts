// The package as users install it: `npm pack`'s tarball, installed by deploy/install.sh (the container image's
// install step) into a temp prefix without dev dependencies, then its `turnpike` bin run through its shebang with
// Node 24 first on PATH, and started by `install.sh start` (the image's entrypoint). On an older Node the bin says
// what it needs. Dependencies come from npm's cache when it has them (npm_config_prefer_offline).
// dist/ is packed as built (npm test builds it first; built here when older than src/): the prepack step that
// builds is not rerun, only its last step (pack:lock, the shrinkwrap).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { VERSION } from '../../src/version.ts';
import { request, tempDir } from '../helpers/servers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL_SH = join(ROOT, 'deploy/install.sh');
/** Node 24 (this test's Node) first on PATH, as npm scripts have it. */
const PATH_24 = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
const ENV_24 = { ...process.env, PATH: PATH_24, npm_config_update_notifier: 'false' };

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r: SpawnSyncReturns<string> = spawnSync(command, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? ENV_24,
    encoding: 'utf8',
    timeout: 180_000,
  });
  assert.ok(r.error === undefined, `${command}: ${r.error?.message}`);
  return r;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  return newest;
}

function ensureBuilt(): void {
  const cli = join(ROOT, 'dist/cli/main.js');
  if (existsSync(cli) && statSync(cli).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const r = run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
}

/** Packs a copy of the package (so the shrinkwrap never lands in the checkout): what npm packs, with the files it always adds; returns the tarball and its files. */
function pack(): { tarball: string; files: string[] } {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    files: string[];
    scripts: Record<string, string>;
  };
  assert.match(pkg.scripts.prepack!, /npm run pack:lock$/);
  const stage = tempDir();
  cleanup.push(stage);
  for (const entry of [
    'package.json',
    'package-lock.json',
    'README.md',
    'LICENSE',
    ...pkg.files.filter((f) => !f.startsWith('!')),
  ]) {
    const from = join(ROOT, entry);
    if (existsSync(from)) cpSync(from, join(stage, entry), { recursive: true });
  }
  const lock = run('npm', ['run', '--silent', 'pack:lock'], { cwd: stage });
  assert.equal(lock.status, 0, lock.stderr);
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', stage], { cwd: stage });
  assert.equal(r.status, 0, r.stderr);
  const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  return { tarball: join(stage, info!.filename), files: info!.files.map((f) => f.path) };
}

/** Folders to remove at the end (an installed prefix is ~50 MB). */
const cleanup: string[] = [];
after(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

/** The `node` of PATH's first directory that has one older than 24, if this machine has one. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const node = join(dir, 'node');
    if (dir === '' || !existsSync(node)) continue;
    const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0 && Number(r.stdout.split('.')[0]) < 24) return dir;
  }
  return undefined;
}

/** Resolves with each listener's port once every named listener has logged "listening". */
function listening(child: ReturnType<typeof spawn>, names: string[]): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let pending = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      pending += text;
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        lines.push(line);
        const entry = /^\{/.test(line) ? (JSON.parse(line) as { msg?: string; listener?: string; port?: number }) : {};
        if (entry.msg === 'listening' && entry.listener !== undefined) ports.set(entry.listener, entry.port!);
        if (names.every((n) => ports.has(n))) resolve(ports);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
}

test(
  'npm pack, deploy/install.sh install, then the installed bin on Node 24 and on an older Node',
  { timeout: 300_000 },
  async (t) => {
    ensureBuilt();
    const { tarball, files } = pack();
    for (const f of [
      'dist/cli/main.js',
      'npm-shrinkwrap.json',
      'src/admin/dashboard/index.html',
      'src/grpc/protos/google/api/annotations.proto', // grpcTranscode protos import it
      'README.md',
    ])
      assert.ok(files.includes(f), `the tarball has ${f}`);
    for (const f of files) assert.ok(!/^test\/|\.ts$|\.map$/.test(f), `the tarball leaves out ${f}`);

    const prefix = tempDir();
    cleanup.push(prefix);
    const install = run('sh', [INSTALL_SH, 'install', tarball, prefix], {
      env: { ...ENV_24, npm_config_prefer_offline: 'true' },
    });
    assert.equal(install.status, 0, `${install.stdout}${install.stderr}`);
    assert.equal(install.stdout.trim().split('\n').at(-1), VERSION, 'install.sh ends with `turnpike --version`');
    const modules = readdirSync(join(prefix, 'lib/node_modules/turnpike/node_modules'));
    assert.ok(modules.includes('undici'));
    for (const dev of ['typescript', 'prettier', 'node', 'playwright-core'])
      assert.ok(!modules.includes(dev), `no dev dependency ${dev}`);

    const bin = join(prefix, 'bin/turnpike');
    const valid = run(bin, ['validate', '--config', join(ROOT, 'deploy/turnpike.yaml')]);
    assert.equal(valid.status, 0, valid.stderr);

    await t.test('install.sh start runs it in its own process, with the V8 flags, until SIGTERM', async () => {
      const dir = tempDir();
      cleanup.push(dir);
      const config = join(dir, 'turnpike.yaml');
      writeFileSync(
        config,
        'listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]\n' +
          'routes: [{ name: hello, match: { path: / }, respond: { body: "installed" } }]\n' +
          'accessLog: { enabled: false }\nadmin: { port: 0 }\n',
      );
      const child = spawn('sh', [INSTALL_SH, 'start', '--no-watch'], {
        env: { ...ENV_24, PATH: `${join(prefix, 'bin')}${delimiter}${PATH_24}`, TURNPIKE_CONFIG: config },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      try {
        const ports = await listening(child, ['web', 'admin']);
        assert.equal((await request(ports.get('web')!, '/')).body, 'installed');
        assert.equal((await request(ports.get('admin')!, '/healthz')).status, 200);
        // sh, env and the bin's relaunch all exec: the process the init system started is the gateway.
        if (process.platform === 'linux') {
          const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
          for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
          assert.ok(argv.includes('start'));
        }
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exit, 0);
    });

    await t.test('on a Node older than 24 the bin prints what it needs and exits 1', (t) => {
      const dir = olderNode();
      if (dir === undefined) return t.skip('no Node older than 24 on PATH');
      const r = run(bin, ['--version'], { env: { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH}` } });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^turnpike needs Node\.js 24 or newer \(this is v\d+/);
      assert.doesNotMatch(r.stderr, /bad option/);
    });
  },
);
