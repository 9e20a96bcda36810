// Shared by the peer gateway scripts: arguments, loading packages from the peers cache directory,
// announcing readiness, and exiting with the bench (stdin closes when the bench goes, even on SIGKILL).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    upstream: { type: 'string' },
    peers: { type: 'string' },
  },
});
if (!values.port || !values.upstream) {
  process.stderr.write('usage: node <peer>.ts --port N --upstream http://127.0.0.1:M [--peers DIR]\n');
  process.exit(2);
}

export const port = Number(values.port);
/** Origin of the backend, e.g. http://127.0.0.1:9001 */
export const upstream = values.upstream;
export const host = '127.0.0.1';

/** `require` rooted in the peers cache directory, where bench/peers.ts installed the packages. */
export function peerRequire(): NodeJS.Require {
  if (!values.peers) throw new Error('--peers DIR is required for this peer');
  return createRequire(join(values.peers, 'package.json'));
}

export function ready(): void {
  process.stdout.write(`listening on ${host}:${port}\n`);
}

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
