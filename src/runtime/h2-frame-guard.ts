// The client's HTTP/2 frames, read before nghttp2 sees them: what Node's nghttp2 lets by (header fields with CR,
// LF, NUL or bad names it silently drops and then forwards the rest; HEADERS reopening a lower stream id; PRIORITY
// on stream 0) and the floods it only partly bounds (rapid reset, CONTINUATION, empty frames, PRIORITY, PING,
// SETTINGS) end the connection with a GOAWAY here. Only frame headers and header blocks are looked at.
import { huffmanDecode } from './hpack-huffman.ts';

/** Bounds a guard enforces; fixed when the config loads (one object shared by the listener's connections). */
export interface H2GuardLimits {
  /** Largest header block (HEADERS + CONTINUATION fragments, bytes as sent). */
  readonly maxHeaderBlock: number;
  /** Streams a client may reset (RST_STREAM) per second (rapid reset, CVE-2023-44487). */
  readonly maxResetsPerSecond: number;
  /** Control frames (PING, SETTINGS, PRIORITY, small WINDOW_UPDATE, empty DATA/HEADERS/CONTINUATION) per second. */
  readonly maxControlFramesPerSecond: number;
  /** Streams the client may have open at once (its SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
}

export const H2_PROTOCOL_ERROR = 1;
export const H2_FRAME_SIZE_ERROR = 6;
export const H2_ENHANCE_YOUR_CALM = 11;

/** Why a connection was ended: the GOAWAY code sent and a short reason for the log. */
export interface H2Violation {
  readonly code: number;
  readonly reason: string;
}

const PREFACE_LENGTH = 24;
/** WINDOW_UPDATE increments below this count as control frames. */
const SMALL_WINDOW_UPDATE = 1024;
const DATA = 0;
const HEADERS = 1;
const PRIORITY = 2;
const RST_STREAM = 3;
const SETTINGS = 4;
const PING = 6;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

/** Parses frame headers across chunk boundaries and keeps the little state the checks need. */
export class H2FrameGuard {
  private readonly limits: H2GuardLimits;
  private skip = PREFACE_LENGTH;
  private head = Buffer.alloc(9);
  private headFill = 0;
  /** Bytes of the current frame's payload still to come, and whether they are kept (a header block). */
  private remaining = 0;
  private keep = false;
  private type = 0;
  private flags = 0;
  private stream = 0;
  private block: Buffer[] = [];
  /** Fragments of the header block so far (HEADERS, then CONTINUATION). */
  private pending: Buffer[] = [];
  private blockBytes = 0;
  private blockStream = 0;
  private blockFirst = true;
  private maxStream = 0;
  /** Client streams it has not ended (trailers may still come on them), oldest first; bounded. */
  private readonly open = new Set<number>();
  /** The WINDOW_UPDATE increment being read (-1: not reading one). */
  private increment = -1;
  private windowStart = 0;
  private resets = 0;
  private control = 0;
  lastStream = 0;

  constructor(limits: H2GuardLimits) {
    this.limits = limits;
  }

  /** Reads one chunk; returns the violation that must end the connection, or null. */
  inspect(chunk: Buffer): H2Violation | null {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, len - pos);
        if (this.keep) this.block.push(chunk.subarray(pos, pos + n));
        else if (this.increment >= 0) {
          for (let i = 0; i < n; i++) this.increment = this.increment * 256 + chunk[pos + i]!;
          if (this.remaining === n && this.increment < SMALL_WINDOW_UPDATE) {
            this.remaining = 0;
            pos += n;
            const v = this.tick(false);
            if (v !== null) return v;
            continue;
          }
        }
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0 && this.keep) {
          const v = this.endFragment();
          if (v !== null) return v;
        }
        continue;
      }
      const n = Math.min(9 - this.headFill, len - pos);
      chunk.copy(this.head, this.headFill, pos, pos + n);
      this.headFill += n;
      pos += n;
      if (this.headFill < 9) break;
      this.headFill = 0;
      const v = this.onFrameHead();
      if (v !== null) return v;
    }
    return null;
  }

  private onFrameHead(): H2Violation | null {
    const h = this.head;
    const length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const flags = h[4]!;
    const stream = h.readUInt32BE(5) & 0x7fffffff;
    this.type = type;
    this.flags = flags;
    this.stream = stream;
    this.remaining = length;
    this.keep = false;
    this.increment = -1;
    // Only header blocks are kept in memory, so their frames may not be larger than the default SETTINGS_MAX_FRAME_SIZE.
    if ((type === HEADERS || type === CONTINUATION) && length > 16_384) {
      return { code: H2_FRAME_SIZE_ERROR, reason: 'a header frame over 16384 bytes' };
    }
    if (this.blockBytes > 0 || !this.blockFirst) {
      // RFC 9113 §6.10: nothing but CONTINUATION of the same stream until END_HEADERS.
      if (type !== CONTINUATION || stream !== this.blockStream) return protocol('a frame interrupted a header block');
    }
    switch (type) {
      case HEADERS: {
        if (stream === 0 || stream % 2 === 0) return protocol('HEADERS on stream 0 or an even stream');
        if (stream > this.maxStream) {
          this.maxStream = stream;
          this.lastStream = stream;
          // Streams the server reset are never ended by the client: the oldest are forgotten, not counted forever.
          if (this.open.size >= this.limits.maxConcurrentStreams * 2)
            this.open.delete(this.open.values().next().value!);
        } else if (!this.open.has(stream)) {
          // §5.1.1: a new stream's id must exceed every id the client used; trailers go on a stream still open.
          return protocol('HEADERS reopen a closed or lower stream id');
        }
        if ((flags & END_STREAM) === 0) this.open.add(stream);
        else this.open.delete(stream);
        this.startBlock(stream);
        if (length === 0 && (flags & END_HEADERS) !== 0) return this.tick(false);
        break;
      }
      case CONTINUATION:
        if (this.blockFirst && this.blockBytes === 0) return protocol('CONTINUATION without HEADERS');
        if (length === 0 && (flags & END_HEADERS) === 0) return this.tick(false);
        this.keep = true;
        break;
      case DATA:
        if ((flags & END_STREAM) !== 0) this.open.delete(stream);
        else if (length === 0) return this.tick(false);
        break;
      case PRIORITY:
        if (stream === 0) return protocol('PRIORITY on stream 0');
        return this.tick(false);
      case RST_STREAM:
        this.open.delete(stream);
        return this.tick(true);
      case SETTINGS:
      case PING:
        return this.tick(false);
      case WINDOW_UPDATE:
        // Only small increments count (a flood of 1-byte updates); a fast download's updates are large.
        if (length === 4) this.increment = 0;
        break;
    }
    if (this.keep && length === 0) return this.endFragment();
    return null;
  }

  private startBlock(stream: number): void {
    this.blockStream = stream;
    this.blockFirst = true;
    this.keep = true;
  }

  /** Counts a control frame (or a reset) in the current one-second window. */
  private tick(reset: boolean): H2Violation | null {
    const now = performance.now();
    if (now - this.windowStart > 1000) {
      this.windowStart = now;
      this.resets = 0;
      this.control = 0;
    }
    if (reset) {
      if (++this.resets > this.limits.maxResetsPerSecond) return calm('streams reset faster than maxResetsPerSecond');
    } else if (++this.control > this.limits.maxControlFramesPerSecond) {
      return calm('control frames faster than maxControlFramesPerSecond');
    }
    return null;
  }

  /** A HEADERS or CONTINUATION payload is complete: bound the block, check it at END_HEADERS. */
  private endFragment(): H2Violation | null {
    this.keep = false;
    let fragment = this.block.length === 1 ? this.block[0]! : Buffer.concat(this.block);
    this.block = [];
    if (this.blockFirst && this.type === HEADERS) {
      const pad = this.flags & PADDED ? fragment[0]! : 0;
      let start = this.flags & PADDED ? 1 : 0;
      if (this.flags & PRIORITY_FLAG) {
        if ((fragment.readUInt32BE(start) & 0x7fffffff) === this.stream) return protocol('a stream depends on itself');
        start += 5;
      }
      if (start + pad > fragment.length) return protocol('padding longer than the frame');
      fragment = fragment.subarray(start, fragment.length - pad);
    }
    this.blockFirst = false;
    this.blockBytes += fragment.length;
    if (this.blockBytes > this.limits.maxHeaderBlock) return calm('header block over the header list limit');
    this.pending.push(fragment);
    if ((this.flags & END_HEADERS) === 0) return null;
    const whole = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.blockBytes = 0;
    this.blockFirst = true;
    const bad = checkHeaderBlock(whole);
    return bad === null ? null : protocol(bad);
  }
}

const protocol = (reason: string): H2Violation => ({ code: H2_PROTOCOL_ERROR, reason });
const calm = (reason: string): H2Violation => ({ code: H2_ENHANCE_YOUR_CALM, reason });

/**
 * RFC 9113 §8.2.1 on every literal field of an HPACK block (indexed fields were checked when they were added):
 * names lowercase tokens (pseudo-headers allowed), values without NUL, CR, LF or surrounding whitespace. Returns
 * why the block is malformed, or null; a block it cannot parse is left to nghttp2 (COMPRESSION_ERROR).
 */
export function checkHeaderBlock(b: Buffer): string | null {
  let pos = 0;
  const int = (n: number): number => {
    const max = (1 << n) - 1;
    let v = b[pos++]! & max;
    if (v < max) return v;
    for (let m = 0; pos < b.length && m < 28; m += 7) {
      const c = b[pos++]!;
      v += (c & 127) * 2 ** m;
      if ((c & 128) === 0) return v;
    }
    return -1;
  };
  while (pos < b.length) {
    const first = b[pos]!;
    if (first & 0x80) {
      int(7);
      continue;
    }
    if ((first & 0xe0) === 0x20) {
      int(5);
      continue;
    }
    const index = (first & 0xc0) === 0x40 ? int(6) : int(4);
    if (index < 0) return null;
    if (index === 0) {
      const name = readString();
      if (name === null) return null;
      if (name.length === 0) return 'a header field has an empty name';
      for (let i = name[0] === 0x3a ? 1 : 0; i < name.length; i++) {
        if (!NAME_CHAR[name[i]!]) return 'a header field name is not a lowercase token';
      }
      if (name.length === 1 && name[0] === 0x3a) return 'a header field name is not a lowercase token';
    }
    const value = readString();
    if (value === null) return null;
    if (value.length > 0) {
      const f = value[0]!;
      const l = value[value.length - 1]!;
      if (f === 0x20 || f === 0x09 || l === 0x20 || l === 0x09) return 'a header value starts or ends with whitespace';
      for (let i = 0; i < value.length; i++) {
        const c = value[i]!;
        if (c === 0 || c === 0x0a || c === 0x0d) return 'a header value contains NUL, CR or LF';
      }
    }
  }
  return null;

  function readString(): Buffer | null {
    if (pos >= b.length) return null;
    const huffman = (b[pos]! & 0x80) !== 0;
    const n = int(7);
    if (n < 0 || pos + n > b.length) return null;
    const raw = b.subarray(pos, pos + n);
    pos += n;
    return huffman ? huffmanDecode(raw) : raw;
  }
}

/** tchar (RFC 9110 §5.6.2) without uppercase letters. */
const NAME_CHAR: boolean[] = [];
for (let c = 0; c < 256; c++) {
  NAME_CHAR[c] =
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}
