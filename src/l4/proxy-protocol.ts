// HAProxy's PROXY protocol (v1 text, v2 binary; spec: haproxy.org/download/2.9/doc/proxy-protocol.txt): a proxy
// in front of us prepends the real client's addresses to the byte stream, and we prepend them for upstreams.
// Only listeners that trust their peer may read it: anyone else could claim any source address.
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { readPrefix } from './read-prefix.ts';

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface ProxyAddresses {
  readonly source: ProxyEndpoint;
  readonly destination: ProxyEndpoint;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** 'local' (v2 LOCAL, v1 UNKNOWN): use the connection's own endpoints, as for a proxy's health check. */
  readonly command: 'proxy' | 'local';
  /** Present only when the header conveyed addresses (not for LOCAL, UNKNOWN, AF_UNSPEC or AF_UNIX). */
  readonly source?: ProxyEndpoint;
  readonly destination?: ProxyEndpoint;
  /** v2 TLV bytes after the address block, unparsed (see `proxyTlvs`); empty for v1. */
  readonly tlvs: Buffer;
}

export interface ProxyHeaderResult extends ProxyHeader {
  /** Bytes read past the header. They have already been pushed back with `socket.unshift`: the socket emits them
   *  first, so do NOT write them to the next hop yourself; they are here for inspection only. */
  readonly rest: Buffer;
}

export type ProxyHeaderFailure = 'not-proxy' | 'malformed' | 'timeout' | 'closed';

export class ProxyHeaderError extends Error {
  readonly reason: ProxyHeaderFailure;
  constructor(reason: ProxyHeaderFailure, message: string) {
    super(message);
    this.reason = reason;
    this.name = 'ProxyHeaderError';
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107; // the spec's worst case: "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_HEAD = 16;
/** Address block length per v2 family nibble: UNSPEC, INET, INET6, UNIX. */
const V2_ADDR_LEN = [0, 12, 36, 216];
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

// ---------------------------------------------------------------------------------------------------- encoding

/** The header a connection to an upstream starts with; `null` when the client's addresses are unknown. */
export function encodeProxyHeader(version: 'v1' | 'v2', info: ProxyAddresses | null): Buffer {
  if (info === null)
    return version === 'v1'
      ? Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
      : Buffer.concat([V2_SIG, Buffer.from([0x20, 0x00, 0, 0])]);
  const sport = checkPort(info.source.port);
  const dport = checkPort(info.destination.port);
  let src = ipBytes(info.source.address);
  let dst = ipBytes(info.destination.address);
  // Both ends must share a family: widen a lone IPv4 end to its IPv4-mapped IPv6 form.
  if (src.length !== dst.length) {
    if (src.length === 4) src = mapV4(src);
    else dst = mapV4(dst);
  }
  const v4 = src.length === 4;
  if (version === 'v1') {
    const text = v4 ? `PROXY TCP4 ${src.join('.')} ${dst.join('.')}` : `PROXY TCP6 ${formatV6(src)} ${formatV6(dst)}`;
    return Buffer.from(`${text} ${sport} ${dport}\r\n`, 'latin1');
  }
  const out = Buffer.alloc(V2_HEAD + (v4 ? 12 : 36));
  V2_SIG.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v4 ? 0x11 : 0x21; // AF_INET / AF_INET6, STREAM
  out.writeUInt16BE(v4 ? 12 : 36, 14);
  src.copy(out, 16);
  dst.copy(out, 16 + src.length);
  out.writeUInt16BE(sport, 16 + 2 * src.length);
  out.writeUInt16BE(dport, 18 + 2 * src.length);
  return out;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port ${port}`);
  return port;
}

/** 4 bytes for IPv4 and IPv4-mapped IPv6, else 16. */
function ipBytes(address: string): Buffer {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped ? mapped[1]! : address;
  if (isIPv4(v4)) return Buffer.from(v4.split('.').map(Number));
  const v6 = parseV6(address);
  if (v6 === null) throw new TypeError(`invalid IP address ${JSON.stringify(address)}`);
  if (v6.subarray(0, 12).equals(MAPPED_PREFIX)) return Buffer.from(v6.subarray(12));
  return v6;
}

const MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function mapV4(v4: Buffer): Buffer {
  return Buffer.concat([MAPPED_PREFIX, v4]);
}

/** 16 bytes of an IPv6 text address (zone id dropped), or null. */
function parseV6(text: string): Buffer | null {
  const address = text.replace(/%.*$/, '');
  if (!isIPv6(address)) return null;
  const [head, tail] = address.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(head);
  const right = groups(tail);
  const all =
    tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  if (all.length !== 8) return null;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/** RFC 5952 text: lower case, longest run (2+) of zero groups as `::`, IPv4-mapped in dotted form. */
function formatV6(b: Buffer): string {
  if (b.subarray(0, 12).equals(MAPPED_PREFIX)) return `::ffff:${b.subarray(12).join('.')}`;
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(2 * i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((n) => n.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ----------------------------------------------------------------------------------------------------- parsing

/**
 * Parses the PROXY header at the start of `buf`: the header and its length in bytes, null while the bytes so far
 * are a valid beginning of one, 'invalid' as soon as they cannot be (so clients without a header fail fast).
 */
export function parseProxyHeader(buf: Buffer): { header: ProxyHeader; length: number } | null | 'invalid' {
  if (buf.length === 0) return null;
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIG[0]) return parseV2(buf);
  return 'invalid';
}

function isPrefix(buf: Buffer, of: Buffer): boolean {
  const n = Math.min(buf.length, of.length);
  return buf.subarray(0, n).equals(of.subarray(0, n));
}

function parseV1(buf: Buffer): { header: ProxyHeader; length: number } | null | 'invalid' {
  if (!isPrefix(buf, V1_PREFIX)) return 'invalid';
  const cr = buf.indexOf(0x0d);
  const lf = buf.indexOf(0x0a);
  // The line ends at the first CR, which must be followed by LF; a bare LF is no line end.
  if ((lf !== -1 && lf !== cr + 1) || (cr !== -1 && cr + 1 < buf.length && lf === -1)) return 'invalid';
  if (cr === -1 || lf === -1) return buf.length >= V1_MAX ? 'invalid' : null;
  const length = lf + 1;
  if (length > V1_MAX) return 'invalid';
  const line = buf.toString('latin1', V1_PREFIX.length, cr);
  const empty = Buffer.alloc(0);
  // UNKNOWN may be followed by anything, which the receiver must ignore.
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN '))
    return { header: { version: 1, command: 'local', tlvs: empty }, length };
  const parts = line.split(' ');
  if (parts.length !== 5) return 'invalid';
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  if (!PORT.test(sport) || !PORT.test(dport) || Number(sport) > 65535 || Number(dport) > 65535) return 'invalid';
  let source: string;
  let destination: string;
  if (proto === 'TCP4') {
    if (!isIPv4(src) || !isIPv4(dst)) return 'invalid';
    [source, destination] = [src, dst];
  } else if (proto === 'TCP6') {
    const s = src.includes('%') ? null : parseV6(src);
    const d = dst.includes('%') ? null : parseV6(dst);
    if (s === null || d === null) return 'invalid';
    [source, destination] = [formatV6(s), formatV6(d)];
  } else return 'invalid';
  const header: ProxyHeader = {
    version: 1,
    command: 'proxy',
    source: { address: source, port: Number(sport) },
    destination: { address: destination, port: Number(dport) },
    tlvs: empty,
  };
  return { header, length };
}

function parseV2(buf: Buffer): { header: ProxyHeader; length: number } | null | 'invalid' {
  if (!isPrefix(buf, V2_SIG)) return 'invalid';
  if (buf.length > 12 && buf[12]! >> 4 !== 2) return 'invalid';
  if (buf.length > 12 && (buf[12]! & 0x0f) > 1) return 'invalid';
  if (buf.length > 13 && (buf[13]! >> 4 > 3 || (buf[13]! & 0x0f) > 2)) return 'invalid';
  if (buf.length < V2_HEAD) return null;
  const length = V2_HEAD + buf.readUInt16BE(14);
  const command = (buf[12]! & 0x0f) === 1 ? 'proxy' : 'local';
  const family = buf[13]! >> 4;
  const addrLen = V2_ADDR_LEN[family]!;
  // A PROXY header must carry the whole address block its family announces; LOCAL's block is ignored.
  if (command === 'proxy' && length - V2_HEAD < addrLen) return 'invalid';
  if (buf.length < length) return null;
  const block = buf.subarray(V2_HEAD, length);
  const tlvs = Buffer.from(block.subarray(Math.min(addrLen, block.length)));
  if (command === 'local' || (family !== 1 && family !== 2)) return { header: { version: 2, command, tlvs }, length };
  const size = family === 1 ? 4 : 16;
  const text = (b: Buffer) => (size === 4 ? b.join('.') : formatV6(b));
  const header: ProxyHeader = {
    version: 2,
    command,
    source: { address: text(block.subarray(0, size)), port: block.readUInt16BE(2 * size) },
    destination: { address: text(block.subarray(size, 2 * size)), port: block.readUInt16BE(2 * size + 2) },
    tlvs,
  };
  return { header, length };
}

/** Splits v2 TLV bytes into entries (type, value); null when they do not frame exactly. */
export function proxyTlvs(raw: Buffer): { type: number; value: Buffer }[] | null {
  const out: { type: number; value: Buffer }[] = [];
  for (let at = 0; at < raw.length;) {
    if (raw.length - at < 3) return null;
    const end = at + 3 + raw.readUInt16BE(at + 1);
    if (end > raw.length) return null;
    out.push({ type: raw[at]!, value: raw.subarray(at + 3, end) });
    at = end;
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------- reading

/**
 * Reads the PROXY header off `socket` (it may arrive split over any number of segments) and pushes any bytes
 * read past it back onto the socket, so the next reader (TLS, HTTP, a pipe) sees the stream as if the header
 * had never been there. Rejects with ProxyHeaderError when the stream does not start with a valid header, the
 * peer leaves, or `timeoutMs` passes first: the caller then destroys the socket. The socket is left without a
 * reader, as a fresh connection is: the next reader starts it.
 */
export async function readProxyHeader(socket: Socket, timeoutMs = 5000): Promise<ProxyHeaderResult> {
  const { value, data } = await readPrefix(socket, timeoutMs, {
    parse(data: Buffer) {
      const parsed = parseProxyHeader(data);
      if (parsed !== 'invalid') return parsed;
      const started = isPrefix(data, V1_PREFIX) || isPrefix(data, V2_SIG);
      throw new ProxyHeaderError(
        started ? 'malformed' : 'not-proxy',
        started ? 'malformed PROXY header' : 'connection did not start with a PROXY header',
      );
    },
    // Never grow past the header's announced size unless one chunk overshoots it: at most the header plus one
    // chunk is ever held.
    grow(held: Buffer): number {
      const announced = held.length >= V2_HEAD && held[0] === V2_SIG[0] ? V2_HEAD + held.readUInt16BE(14) : V1_MAX;
      return Math.min(Math.max(held.length * 2, 128), announced);
    },
    maxBytes: V2_HEAD + 0xffff,
    timeout: () => new ProxyHeaderError('timeout', `no complete PROXY header within ${timeoutMs} ms`),
    gone: () => new ProxyHeaderError('closed', 'connection closed before a complete PROXY header'),
    tooLarge: () => new ProxyHeaderError('malformed', 'PROXY header too large'),
    done(parsed: { header: ProxyHeader; length: number }, data: Buffer) {
      if (data.length > parsed.length) socket.unshift(Buffer.from(data.subarray(parsed.length)));
    },
  });
  return { ...value.header, rest: Buffer.from(data.subarray(value.length)) };
}
