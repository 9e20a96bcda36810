// Reads a TLS ClientHello off a raw socket without terminating TLS, for SNI routing of `protocol: tcp`
// listeners: the server name (RFC 6066) and ALPN list (RFC 7301) pick a target, and every byte read is
// replayed to it, so the TLS handshake happens end to end between the client and the target.
import type { Socket } from 'node:net';
import { readPrefix } from './read-prefix.ts';

/** A ClientHello is one handshake message; 16 KiB covers any real one (post-quantum key shares are ~1.2 KiB). */
const MAX_HELLO = 16 * 1024;
const RECORD_HEADER = 5;
/** The hello plus room for the headers of the records it is split into. */
const MAX_BUFFERED = MAX_HELLO + 1024;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

export interface ClientHelloInfo {
  /** The host_name asked for, lower-cased, without a trailing dot; undefined when the client sent no SNI. */
  readonly serverName: string | undefined;
  readonly alpn: string[];
  /** Every byte read from the socket (the hello and anything after it): write it to the target first. */
  readonly buffered: Buffer;
}

export type ClientHelloFailure = 'not-tls' | 'malformed' | 'too-large' | 'timeout' | 'closed';

export class ClientHelloError extends Error {
  readonly reason: ClientHelloFailure;
  constructor(reason: ClientHelloFailure, message: string) {
    super(message);
    this.reason = reason;
    this.name = 'ClientHelloError';
  }
}

/**
 * Reads from `socket` until a whole ClientHello has arrived (records may be split across TCP segments, and the
 * hello across several records). Rejects on non-TLS input, a hello over 16 KiB, `timeoutMs` without a complete
 * hello, or the peer leaving; the caller then closes the socket. The socket is left without a reader either way.
 */
export async function readClientHello(socket: Socket, timeoutMs = 5000): Promise<ClientHelloInfo> {
  const { value } = await readPrefix(socket, timeoutMs, {
    parse: parseClientHello,
    maxBytes: MAX_BUFFERED,
    timeout: () => new ClientHelloError('timeout', `no complete ClientHello within ${timeoutMs} ms`),
    gone: () => new ClientHelloError('closed', 'connection closed before a complete ClientHello'),
    tooLarge: (held) => new ClientHelloError('too-large', `no complete ClientHello in ${held} bytes`),
  });
  return value;
}

/**
 * Parses the ClientHello at the start of `data`: null while more bytes are needed, throws ClientHelloError
 * when the bytes cannot be (the start of) one. `buffered` in the result is `data` itself.
 */
export function parseClientHello(data: Buffer): ClientHelloInfo | null {
  // Gather the handshake bytes from successive records until the message they carry is complete.
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1; // handshake message length (4-byte header included), once known
  let at = 0;
  while (need === -1 || have < need) {
    if (data.length - at < RECORD_HEADER) return checkPartial(data, at);
    if (data[at] !== HANDSHAKE)
      throw new ClientHelloError(at === 0 ? 'not-tls' : 'malformed', 'not a TLS handshake record');
    if (data[at + 1] !== 3) throw new ClientHelloError(at === 0 ? 'not-tls' : 'malformed', 'not a TLS record version');
    const recordLength = data.readUInt16BE(at + 3);
    if (recordLength === 0 || recordLength > MAX_HELLO)
      throw new ClientHelloError('malformed', `bad TLS record length ${recordLength}`);
    if (data.length - at - RECORD_HEADER < recordLength) return null;
    const fragment = data.subarray(at + RECORD_HEADER, at + RECORD_HEADER + recordLength);
    fragments.push(fragment);
    have += fragment.length;
    at += RECORD_HEADER + recordLength;
    if (need === -1 && have >= 4) {
      const head = fragments.length === 1 ? fragment : Buffer.concat(fragments, have);
      if (head[0] !== CLIENT_HELLO)
        throw new ClientHelloError('malformed', 'first handshake message is not a ClientHello');
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_HELLO) throw new ClientHelloError('too-large', `ClientHello of ${need} bytes`);
    }
  }
  const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, have);
  return { ...parseBody(message.subarray(4, need)), buffered: data };
}

/** The first bytes can already tell a plain-text protocol (HTTP, SSH) from TLS: refuse those at once. */
function checkPartial(data: Buffer, at: number): null {
  if (data.length > at && data[at] !== HANDSHAKE)
    throw new ClientHelloError(at === 0 ? 'not-tls' : 'malformed', 'not a TLS handshake record');
  if (data.length > at + 1 && data[at + 1] !== 3)
    throw new ClientHelloError(at === 0 ? 'not-tls' : 'malformed', 'not a TLS record version');
  return null;
}

function parseBody(body: Buffer): { serverName: string | undefined; alpn: string[] } {
  const r = new Reader(body);
  r.skip(2 + 32); // legacy_version, random
  r.skip(r.u8()); // legacy_session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // legacy_compression_methods
  let serverName: string | undefined;
  let alpn: string[] = [];
  if (r.left() === 0) return { serverName, alpn }; // an old hello without extensions
  const extensions = r.sub(r.u16());
  while (extensions.left() > 0) {
    const type = extensions.u16();
    const ext = extensions.sub(extensions.u16());
    if (type === EXT_SERVER_NAME) serverName = parseServerName(ext);
    else if (type === EXT_ALPN) alpn = parseAlpn(ext);
  }
  return { serverName, alpn };
}

function parseServerName(ext: Reader): string | undefined {
  const list = ext.sub(ext.u16());
  while (list.left() > 0) {
    const nameType = list.u8();
    const name = list.bytes(list.u16());
    if (nameType !== 0) continue; // only host_name is defined
    const text = name.toString('latin1').toLowerCase().replace(/\.$/, '');
    // A DNS name in ASCII (IDNs arrive as A-labels): anything else is refused rather than routed or logged.
    if (text.length === 0 || text.length > 253 || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(text)) {
      throw new ClientHelloError('malformed', 'server_name is not a DNS host name');
    }
    return text;
  }
  return undefined;
}

function parseAlpn(ext: Reader): string[] {
  const list = ext.sub(ext.u16());
  const out: string[] = [];
  while (list.left() > 0) out.push(list.bytes(list.u8()).toString('latin1'));
  return out;
}

/** Bounds-checked reads over a buffer; running past the end means the hello is malformed. */
class Reader {
  private readonly buf: Buffer;
  private at = 0;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  left(): number {
    return this.buf.length - this.at;
  }
  private need(n: number): void {
    if (this.left() < n) throw new ClientHelloError('malformed', 'truncated ClientHello');
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  sub(n: number): Reader {
    return new Reader(this.bytes(n));
  }
}

export interface ServerNameEntry<T> {
  /** An exact name, `*.example.com` (exactly one more label) or `*` (any name, or none). */
  readonly serverName: string;
  readonly value: T;
}

/** Exact name first, then a one-label wildcard, then the `*` catch-all; undefined: refuse the connection. */
export function matchServerName<T>(name: string | undefined, entries: readonly ServerNameEntry<T>[]): T | undefined {
  return compileServerNames(entries)(name);
}

/** Precompiles the lookup of matchServerName (at config load), so each connection costs two map lookups. */
export function compileServerNames<T>(
  entries: readonly ServerNameEntry<T>[],
): (name: string | undefined) => T | undefined {
  const exact = new Map<string, T>();
  const wildcard = new Map<string, T>(); // by the suffix after '*.'
  let any: { value: T } | undefined;
  for (const e of entries) {
    const n = e.serverName.toLowerCase().replace(/\.$/, '');
    if (n === '*') any ??= { value: e.value };
    else if (n.startsWith('*.')) {
      if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), e.value);
    } else if (!exact.has(n)) exact.set(n, e.value);
  }
  return (name) => {
    if (name !== undefined) {
      const n = name.toLowerCase().replace(/\.$/, '');
      const hit = exact.get(n);
      if (hit !== undefined) return hit;
      const dot = n.indexOf('.');
      if (dot > 0) {
        const w = wildcard.get(n.slice(dot + 1));
        if (w !== undefined) return w;
      }
    }
    return any?.value;
  };
}
