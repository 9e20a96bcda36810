// The Node gateways people would pick instead of Turnpike, installed with npm into a cache directory outside
// the project (pinned versions, reused across runs), and started from the scripts in bench/peers/ with
// Turnpike's own Node binary and V8 flags so throughput and memory compare like for like.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { runCommand, startChild, type Child } from './children.ts';
import { freePort, waitFor200 } from './net.ts';

export const PEERS_DIR = join(os.tmpdir(), 'turnpike-bench-peers');

/** Exact versions, so two runs on different days measure the same code. */
export const PEER_PACKAGES: Readonly<Record<string, string>> = {
  'fast-gateway': '5.0.1',
  '@fastify/http-proxy': '11.6.3',
  fastify: '5.12.8',
  'http-proxy': '1.18.1',
};

/** fast-gateway 5.0.1 asks for fast-proxy-lite ^1.1.3, which the registry this bench was written against does
 *  not have; 1.1.2 (its proxy core, one patch release older) is pinned instead so the install works anywhere. */
export const PEER_OVERRIDES: Readonly<Record<string, string>> = { 'fast-proxy-lite': '1.1.2' };

/** Which packages each peer target needs (node-limit uses the project's own undici). */
export const PEER_NEEDS: Readonly<Record<string, readonly string[]>> = {
  'fast-gateway': ['fast-gateway'],
  'fastify-proxy': ['@fastify/http-proxy', 'fastify'],
  'http-proxy': ['http-proxy'],
  'node-limit': [],
};

function installedVersion(pkg: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(PEERS_DIR, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

const installCommand = () => `npm install --prefix ${PEERS_DIR} (package.json there lists the pinned versions)`;

/**
 * Installs the pinned peer packages unless the cache already has them. Returns undefined when they are
 * ready, else a one-line reason that includes the command to run by hand.
 */
export async function ensurePeers(packages: readonly string[]): Promise<string | undefined> {
  const stale = packages.filter((p) => installedVersion(p) !== PEER_PACKAGES[p]);
  if (stale.length === 0) return undefined;
  mkdirSync(PEERS_DIR, { recursive: true });
  const manifest = {
    name: 'turnpike-bench-peers',
    private: true,
    description: 'cache for turnpike bench/',
    dependencies: PEER_PACKAGES,
    overrides: PEER_OVERRIDES,
  };
  writeFileSync(join(PEERS_DIR, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.error(`installing peer gateways into ${PEERS_DIR} (${stale.join(', ')})…`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const args = ['install', '--prefix', PEERS_DIR, '--no-audit', '--no-fund', '--omit=dev', '--loglevel=error'];
  const res = await runCommand(npm, args, 240_000);
  const still = packages.filter((p) => installedVersion(p) !== PEER_PACKAGES[p]);
  if (res.code === 0 && still.length === 0) return undefined;
  const last =
    res.output
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .pop() ?? '';
  return `npm install failed (${res.timedOut ? 'timed out' : `exit ${res.code}`}: ${last.slice(0, 200)}) — run: ${installCommand()}`;
}

export function peerVersions(): Record<string, string> {
  const all = [...Object.keys(PEER_PACKAGES), ...Object.keys(PEER_OVERRIDES)];
  return Object.fromEntries(all.map((p) => [p, installedVersion(p) ?? 'not installed']));
}

export interface Peer {
  readonly child: Child;
  readonly port: number;
}

/** Starts bench/peers/<name>.ts in front of the backend and waits until it proxies a 200. */
export async function startPeer(name: string, backendPort: number): Promise<Peer> {
  const script = fileURLToPath(new URL(`./peers/${name}.ts`, import.meta.url));
  if (!existsSync(script)) throw new Error(`no peer script ${script}`);
  const port = await freePort();
  const child = startChild(
    process.execPath,
    [
      ...NODE_FLAGS,
      script,
      '--port',
      String(port),
      '--upstream',
      `http://127.0.0.1:${backendPort}`,
      '--peers',
      PEERS_DIR,
    ],
    { guard: true },
  );
  try {
    await waitFor200(`http://127.0.0.1:${port}/100b`, 15_000, () => child.hasExited());
  } catch (err) {
    const lines = child
      .tail()
      .trim()
      .split('\n')
      .filter((l) => l.trim());
    const why = lines.find((l) => /error/i.test(l)) ?? lines.pop() ?? (err as Error).message;
    await child.stop(1000);
    throw new Error(why.slice(0, 300));
  }
  return { child, port };
}
