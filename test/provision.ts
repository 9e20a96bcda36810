// Run first by `npm test`: the system programs the tests spawn, installed with apt-get when we are root and one is
// missing; otherwise the exact command to install them, and a non-zero exit before any test runs.
// Silent and quick when everything is there. `node test/provision.ts` runs it alone.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface TestProgram {
  /** What the tests run, looked up on PATH (the helpers spawn it by this name). */
  readonly binary: string;
  /** The Debian package that provides it. */
  readonly apt: string;
  readonly usedBy: string;
}

/** The one list: every program a test spawns (besides Node itself). */
export const TEST_PROGRAMS: readonly TestProgram[] = [
  {
    binary: 'redis-server',
    apt: 'redis-server',
    usedBy:
      'test/helpers/redis.ts: the Redis-backed rate-limit and cache stores, Redis discovery and turnpike register, and the master, replica, sentinels (redis-server --sentinel) and cluster nodes of redis-sentinel.ts and redis-cluster.ts',
  },
  {
    binary: 'etcd',
    apt: 'etcd-server',
    usedBy: 'test/helpers/etcd.ts: the etcd discovery provider and the etcd config source',
  },
  {
    binary: 'haproxy',
    apt: 'haproxy',
    usedBy: 'test/helpers/haproxy.ts: the L4 balancer in front of three gateways (test/e2e/three-instances.test.ts)',
  },
  {
    binary: 'redis-cli',
    apt: 'redis-tools',
    usedBy: 'test/helpers/redis-cluster.ts: redis-cli --cluster create assigns the slots',
  },
  { binary: 'openssl', apt: 'openssl', usedBy: "test/helpers/certs.ts: the TLS tests' certificates" },
  {
    binary: 'python3',
    apt: 'python3',
    usedBy:
      'test/helpers/upstream-faults.ts: the blackhole target (a listener that never accepts); test/e2e/route-tests.test.ts: parses the JUnit XML (xml.etree, hence python3, not python3-minimal)',
  },
  { binary: 'wrk', apt: 'wrk', usedBy: 'test/attacks/throughput-baseline.test.ts: HTTP/1.1 load (Z01)' },
  {
    binary: 'h2load',
    apt: 'nghttp2-client',
    usedBy: 'test/attacks/throughput-baseline.test.ts: h2 over TLS load (Z01)',
  },
  { binary: 'promtool', apt: 'prometheus', usedBy: 'test/e2e/metrics.test.ts: promtool check metrics' },
  {
    binary: 'pebble',
    apt: 'pebble',
    usedBy: 'test/helpers/pebble.ts: the ACME CA (pebble and pebble-challtestsrv) of test/e2e/acme*.test.ts',
  },
  {
    binary: 'chromium',
    apt: 'chromium',
    usedBy: 'test/e2e/admin-dashboard.test.ts: the dashboard in a real browser (driven by playwright-core)',
  },
];

/** The executable `binary` in one of PATH's directories, or undefined. */
export function findOnPath(binary: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface ProvisionHost {
  readonly path: string;
  readonly uid: number;
  /** Runs apt-get with these arguments; code 0 is success, output is what it printed (shown only on failure). */
  aptGet(args: readonly string[]): { code: number; output: string };
  /** One line to stderr. */
  say(line: string): void;
}

/** Installs what is missing (as root) or says how to; the exit code for `npm test` (0: run the tests). */
export function provision(host: ProvisionHost, programs: readonly TestProgram[] = TEST_PROGRAMS): number {
  const missing = programs.filter((p) => findOnPath(p.binary, host.path) === undefined);
  if (missing.length === 0) return 0;
  const packages = [...new Set(missing.map((p) => p.apt))];
  const names = missing.map((p) => `${p.binary} (${p.usedBy})`).join(', ');
  const install = `apt-get install -y ${packages.join(' ')}`;
  if (host.uid !== 0) {
    host.say(`The tests need ${names}, not found on PATH. Install with: sudo apt-get update && sudo ${install}`);
    return 1;
  }
  if (findOnPath('apt-get', host.path) === undefined) {
    host.say(`The tests need ${names}, not found on PATH, and there is no apt-get to install them with`);
    return 1;
  }
  host.say(`Installing ${packages.join(' ')} for the tests: apt-get update && ${install}`);
  // A fresh machine has no package lists yet, so refresh them first (only ever when something is missing).
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=120', ...packages],
  ]) {
    const run = host.aptGet(args);
    if (run.code !== 0) {
      host.say(`apt-get ${args[0]} failed (exit ${run.code}):\n${run.output.slice(-2000)}`);
      return 1;
    }
  }
  const still = missing.filter((p) => findOnPath(p.binary, host.path) === undefined);
  if (still.length > 0) {
    host.say(`Still not on PATH after installing: ${still.map((p) => p.binary).join(', ')}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  process.exitCode = provision({
    path: process.env.PATH ?? '',
    uid: process.getuid?.() ?? -1,
    aptGet(args) {
      const res = spawnSync('apt-get', args, {
        encoding: 'utf8',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      return {
        code: res.status ?? 1,
        output: `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`,
      };
    },
    say: (line) => process.stderr.write(`${line}\n`),
  });
}
