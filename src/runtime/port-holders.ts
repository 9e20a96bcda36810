// Who else listens on a port. Every Turnpike socket sets SO_REUSEPORT (acceptSockets, workers), so the kernel lets
// a second Turnpike of the same user bind the same port and splits the traffic between the two. Before binding we
// therefore ask the kernel who holds the port: /proc/net/tcp{,6} lists the listening sockets (by inode) and
// /proc/<pid>/fd says which process owns each. The kernel is the only record, so nothing can go stale (a lock file
// left by a killed process could). Linux only: elsewhere the bind itself decides.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { endianness } from 'node:os';
import type { Config } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';

/** A TCP port a listener is about to bind. */
export interface PortClaim {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

/**
 * The TCP ports a config binds (udp listeners are never shared, so the bind refuses a held one itself), skipping
 * listeners whose key (`protocol|address|port`, as the runtime keys its open listeners) is in `open`.
 */
export function tcpClaims(config: Config, open: ReadonlySet<string> = new Set(), admin = true): PortClaim[] {
  const claims: PortClaim[] = config.listeners
    .filter((l) => l.protocol !== 'udp' && l.port !== 0 && !open.has(`${l.protocol}|${l.address}|${l.port}`))
    .map((l) => ({ name: l.name, address: l.address, port: l.port }));
  if (admin && config.admin !== undefined && config.admin.port !== 0)
    claims.push({ name: 'admin', address: config.admin.address, port: config.admin.port });
  return claims;
}

export interface PortHolder {
  readonly pid: number | null;
  /** The process's command line, when readable ('' otherwise). */
  readonly command: string;
}

/**
 * Throws TP_LISTEN_FAILED naming the holder's pid when another process listens on one of the claimed ports,
 * unless `handover` (a binary upgrade shares the port on purpose); returns what was found either way.
 */
export function refuseHeldPorts(
  claims: readonly PortClaim[],
  options: { readonly handover: boolean; readonly ownPids: ReadonlySet<number> },
): { claim: PortClaim; holders: PortHolder[] }[] {
  const wanted = claims.filter((c) => c.port !== 0);
  if (wanted.length === 0 || process.platform !== 'linux') return [];
  const listening = listeningSockets();
  const found: { claim: PortClaim; holders: PortHolder[] }[] = [];
  let owners: Map<string, number[]> | null = null;
  for (const claim of wanted) {
    const inodes = listening.filter((s) => s.port === claim.port && overlaps(s.address, claim.address));
    if (inodes.length === 0) continue;
    owners ??= socketOwners();
    const holders = new Map<string, PortHolder>();
    for (const s of inodes) {
      const pids = owners.get(s.inode) ?? [];
      if (pids.some((p) => options.ownPids.has(p))) continue;
      const holder = describe(pids[0] ?? null);
      holders.set(String(holder.pid), holder);
    }
    if (holders.size === 0) continue;
    const list = [...holders.values()];
    found.push({ claim, holders: list });
    if (!options.handover) throw heldError(claim, list);
  }
  return found;
}

function heldError(claim: PortClaim, holders: PortHolder[]): TurnpikeError {
  const pids = holders.map((h) => h.pid).filter((p): p is number => p !== null);
  const who = pids.length > 0 ? `pid ${pids.join(', ')}` : 'a process this user cannot see';
  const turnpike = holders.some((h) => isTurnpike(h.command));
  const hint =
    turnpike && pids.length > 0
      ? `; to replace that Turnpike without downtime start this one with --handover, then send SIGTERM to ${pids[0]}`
      : '';
  return new TurnpikeError(
    'TP_LISTEN_FAILED',
    `listener "${claim.name}" cannot bind ${claim.address}:${claim.port}: ${turnpike ? 'another Turnpike' : 'another process'} (${who}) is listening there${hint}`,
  );
}

const isTurnpike = (command: string) => /turnpike|cli\/main\.[jt]s|worker-main\.[jt]s/.test(command);

/** The pid to name: a worker's holder is its primary (the process an operator signals). */
function describe(pid: number | null): PortHolder {
  if (pid === null) return { pid, command: '' };
  const command = commandOf(pid);
  if (/worker-main\.[jt]s/.test(command)) {
    const parent = parentOf(pid);
    if (parent !== null) return { pid: parent, command: commandOf(parent) };
  }
  return { pid, command };
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function parentOf(pid: number): number | null {
  try {
    // The command name (field 2) is in parentheses and may hold spaces: the fields after its ')' are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
  } catch {
    return null;
  }
}

interface Listening {
  readonly address: string;
  readonly port: number;
  readonly inode: string;
}

/** Listening TCP sockets of this network namespace (state 0A). */
export function listeningSockets(): Listening[] {
  const out: Listening[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A' || cols[1] === undefined || cols[9] === undefined) continue;
      const [hex, port] = cols[1].split(':') as [string, string];
      out.push({ address: v6 ? ipv6(hex) : ipv4(hex), port: parseInt(port, 16), inode: cols[9] });
    }
  }
  return out;
}

/** The kernel prints each 32-bit word of the address in host byte order. */
function wordBytes(word: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => parseInt(word.slice(i, i + 2), 16));
  return endianness() === 'LE' ? bytes.reverse() : bytes;
}

function ipv4(hex: string): string {
  return wordBytes(hex).join('.');
}

function ipv6(hex: string): string {
  const bytes = [0, 8, 16, 24].flatMap((i) => wordBytes(hex.slice(i, i + 8)));
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255)
    return bytes.slice(12).join('.'); // v4-mapped
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const full = groups.join(':');
  return full === '0:0:0:0:0:0:0:0' ? '::' : full === '0:0:0:0:0:0:0:1' ? '::1' : full;
}

/** Whether a socket bound to `held` would take connections meant for `wanted` (or the kernel refuse the bind). */
function overlaps(held: string, wanted: string): boolean {
  if (isIP(wanted) === 0) return true; // a host name: any holder of the port may be it
  const w = normalise(wanted);
  if (held === w || held === '::' || w === '::') return true;
  if (held === '0.0.0.0') return isIP(w) === 4;
  if (w === '0.0.0.0') return isIP(held) === 4;
  return false;
}

function normalise(address: string): string {
  if (address === '0:0:0:0:0:0:0:0') return '::';
  if (address === '0:0:0:0:0:0:0:1') return '::1';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Socket inode → the pids holding it, over every process this user may read (a fork shares its sockets). */
function socketOwners(): Map<string, number[]> {
  const owners = new Map<string, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith('socket:[')) {
        const inode = target.slice(8, -1);
        const pids = owners.get(inode);
        if (pids === undefined) owners.set(inode, [Number(entry)]);
        else pids.push(Number(entry));
      }
    }
  }
  return owners;
}

/**
 * The check a process runs before it binds: refuses held ports, or with `handover` says whom it shares them with
 * (`ownPids`: this process and its workers, read when called).
 */
export function portGuard(
  handover: boolean,
  log: (level: 'info' | 'warn', fields: object, message: string) => void,
  ownPids: () => ReadonlySet<number> = () => new Set([process.pid]),
): (claims: PortClaim[]) => void {
  let warned = false;
  return (claims) => {
    for (const { claim, holders } of refuseHeldPorts(claims, { handover, ownPids: ownPids() })) {
      log(
        'info',
        { listener: claim.name, port: claim.port, sharedWith: holders.map((h) => h.pid) },
        'handover: sharing the port with the running Turnpike until it stops',
      );
      if (!warned && migrateRequests() === false) {
        warned = true;
        log(
          'warn',
          { sysctl: 'net.ipv4.tcp_migrate_req' },
          'handover: net.ipv4.tcp_migrate_req is 0, so a connection that reaches the old process just as it closes its listening sockets is reset; set it to 1 for an upgrade without any reset',
        );
      }
    }
  };
}

/**
 * Whether the kernel moves the connections queued on a closing SO_REUSEPORT socket to another socket of its group
 * (Linux 5.14+; null where unknown). Without it they are reset.
 */
export function migrateRequests(): boolean | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() !== '0';
  } catch {
    return null;
  }
}
