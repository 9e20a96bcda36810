// A DNS server on UDP port 0 whose answers a test sets: A, AAAA and SRV records with TTLs, NXDOMAIN, SERVFAIL,
// or no answer at all (a timeout). A minimal encoder (RFC 1035), no compression, enough for node:dns's resolver.
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

export type DnsRecord =
  | { readonly type: 'A' | 'AAAA'; readonly address: string; readonly ttl?: number }
  | {
      readonly type: 'SRV';
      readonly target: string;
      readonly port: number;
      readonly priority?: number;
      readonly weight?: number;
      readonly ttl?: number;
    };

/** What a name answers: its records, or NXDOMAIN, or SERVFAIL, or silence. */
export type DnsAnswer = readonly DnsRecord[] | 'NXDOMAIN' | 'SERVFAIL' | 'DROP';

const TYPES = { A: 1, AAAA: 28, SRV: 33 } as const;

function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((p) => p !== '');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function rdata(r: DnsRecord): Buffer {
  if (r.type !== 'SRV') return r.type === 'A' ? Buffer.from(r.address.split('.').map(Number)) : ipv6Bytes(r.address);
  const head = Buffer.alloc(6);
  head.writeUInt16BE(r.priority ?? 0, 0);
  head.writeUInt16BE(r.weight ?? 1, 2);
  head.writeUInt16BE(r.port, 4);
  return Buffer.concat([head, encodeName(r.target)]);
}

/** Reads the question's name and type (the query starts at offset 12). */
function question(msg: Buffer): { name: string; type: number; end: number } {
  const labels: string[] = [];
  let at = 12;
  while (msg[at]! !== 0) {
    const len = msg[at]!;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString());
    at += len + 1;
  }
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(at + 1), end: at + 5 };
}

export interface DnsServer {
  /** "127.0.0.1:PORT", as discovery.dns.servers takes it. */
  readonly address: string;
  /** Sets what `name` answers (every type); unset names answer NXDOMAIN. */
  set(name: string, answer: DnsAnswer): void;
  /** Queries received, as "name TYPE". */
  readonly queries: string[];
  close(): Promise<void>;
}

export async function startDnsServer(): Promise<DnsServer> {
  const socket: Socket = createSocket('udp4');
  const answers = new Map<string, DnsAnswer>();
  const queries: string[] = [];
  socket.on('message', (msg, from) => {
    const q = question(msg);
    const typeName = Object.entries(TYPES).find(([, v]) => v === q.type)?.[0] ?? String(q.type);
    queries.push(`${q.name} ${typeName}`);
    const answer = answers.get(q.name) ?? 'NXDOMAIN';
    if (answer === 'DROP') return;
    const records = typeof answer === 'string' ? [] : answer.filter((r) => TYPES[r.type] === q.type);
    const rcode = answer === 'NXDOMAIN' ? 3 : answer === 'SERVFAIL' ? 2 : 0;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // the id
    header.writeUInt16BE(0x8180 | rcode, 2); // response, recursion desired and available
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    const rrs = records.map((r) => {
      const data = rdata(r);
      const fixed = Buffer.alloc(10);
      fixed.writeUInt16BE(TYPES[r.type], 0);
      fixed.writeUInt16BE(1, 2); // IN
      fixed.writeUInt32BE(r.ttl ?? 60, 4);
      fixed.writeUInt16BE(data.length, 8);
      return Buffer.concat([encodeName(q.name), fixed, data]);
    });
    socket.send(Buffer.concat([header, msg.subarray(12, q.end), ...rrs]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    set(name, answer) {
      if (typeof answer !== 'string')
        for (const r of answer)
          if (r.type !== 'SRV' && isIP(r.address) === 0) throw new Error(`not an IP: ${r.address}`);
      answers.set(name.toLowerCase(), answer);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
