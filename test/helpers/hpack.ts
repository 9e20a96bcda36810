// HPACK (RFC 7541) for hand-written HTTP/2 frames: an encoder that writes any bytes (literal without indexing, no
// Huffman, so CR, LF, NUL and uppercase reach the server as sent) and a decoder for the server's responses.

import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../../src/runtime/hpack-huffman.ts';
export const STATIC_TABLE: [string, string][] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** An HPACK integer with an `n`-bit prefix whose high bits are `first`. */
export function hpackInt(value: number, n: number, first = 0): Buffer {
  const max = (1 << n) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

/** A header block of literal fields without indexing, new names, no Huffman: exactly the bytes given. */
export function encodeHeaderBlock(fields: readonly (readonly [string | Buffer, string | Buffer])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = bytes(name);
    const v = bytes(value);
    parts.push(Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

/** `s` Huffman-coded (RFC 7541 §5.2), padded with the EOS prefix (ones). */
export function huffmanEncode(s: string | Buffer): Buffer {
  const out: number[] = [];
  let acc = 0n;
  let bits = 0;
  for (const byte of bytes(s)) {
    acc = (acc << BigInt(HUFFMAN_LENGTHS[byte]!)) | BigInt(HUFFMAN_CODES[byte]!);
    bits += HUFFMAN_LENGTHS[byte]!;
    while (bits >= 8) {
      bits -= 8;
      out.push(Number((acc >> BigInt(bits)) & 0xffn));
    }
  }
  if (bits > 0) out.push(Number(((acc << BigInt(8 - bits)) | ((1n << BigInt(8 - bits)) - 1n)) & 0xffn));
  return Buffer.from(out);
}

/** A header block of literal fields without indexing, new names, names and values Huffman-coded. */
export function encodeHuffmanHeaderBlock(fields: readonly (readonly [string | Buffer, string | Buffer])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = huffmanEncode(name);
    const v = huffmanEncode(value);
    parts.push(Buffer.from([0]), hpackInt(n.length, 7, 0x80), n, hpackInt(v.length, 7, 0x80), v);
  }
  return Buffer.concat(parts);
}

interface Node {
  sym?: number;
  kids: [Node | undefined, Node | undefined];
}
let tree: Node | undefined;
function huffmanTree(): Node {
  if (tree) return tree;
  tree = { kids: [undefined, undefined] };
  for (let sym = 0; sym < HUFFMAN_CODES.length; sym++) {
    let node = tree;
    const code = HUFFMAN_CODES[sym]!;
    for (let bit = HUFFMAN_LENGTHS[sym]! - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      node = node.kids[b] ??= { kids: [undefined, undefined] };
    }
    node.sym = sym;
  }
  return tree;
}

function huffmanDecode(data: Buffer): string {
  const root = huffmanTree();
  let node = root;
  let out = '';
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      node = node.kids[(byte >> bit) & 1]!;
      if (node === undefined) throw new Error('bad huffman code');
      if (node.sym !== undefined) {
        out += String.fromCharCode(node.sym);
        node = root;
      }
    }
  }
  return out;
}

/** A stateful decoder (one per connection: the dynamic table lives across header blocks). */
export class HpackDecoder {
  private dynamic: [string, string][] = [];
  private size = 0;
  private max = 4096;

  decode(block: Buffer): [string, string][] {
    const out: [string, string][] = [];
    let pos = 0;
    const int = (n: number): number => {
      const max = (1 << n) - 1;
      let v = block[pos++]! & max;
      if (v < max) return v;
      let m = 0;
      for (;;) {
        const b = block[pos++]!;
        v += (b & 127) * 2 ** m;
        m += 7;
        if ((b & 128) === 0) return v;
      }
    };
    const str = (): string => {
      const huff = (block[pos]! & 0x80) !== 0;
      const len = int(7);
      const raw = block.subarray(pos, pos + len);
      pos += len;
      return huff ? huffmanDecode(raw) : raw.toString('latin1');
    };
    const entry = (i: number): [string, string] => {
      const e = i <= STATIC_TABLE.length ? STATIC_TABLE[i - 1] : this.dynamic[i - STATIC_TABLE.length - 1];
      if (e === undefined) throw new Error(`bad hpack index ${i}`);
      return e;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        out.push(entry(int(7)));
      } else if ((b & 0xc0) === 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : entry(idx)[0];
        const field: [string, string] = [name, str()];
        out.push(field);
        this.add(field);
      } else if ((b & 0xe0) === 0x20) {
        this.max = int(5);
        this.evict();
      } else {
        const idx = int(4);
        const name = idx === 0 ? str() : entry(idx)[0];
        out.push([name, str()]);
      }
    }
    return out;
  }

  private add(field: [string, string]): void {
    this.dynamic.unshift(field);
    this.size += field[0].length + field[1].length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.max && this.dynamic.length > 0) {
      const [n, v] = this.dynamic.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }
}
