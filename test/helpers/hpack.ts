// HPACK (RFC 7541) for hand-written HTTP/2 frames: an encoder that writes any bytes (literal without indexing, no
// Huffman, so CR, LF, NUL and uppercase reach the server as sent) and a decoder for the server's responses.

const HUFFMAN_CODES = [
  8184, 8388568, 268435426, 268435427, 268435428, 268435429, 268435430, 268435431, 268435432, 16777194, 1073741820,
  268435433, 268435434, 1073741821, 268435435, 268435436, 268435437, 268435438, 268435439, 268435440, 268435441,
  268435442, 1073741822, 268435443, 268435444, 268435445, 268435446, 268435447, 268435448, 268435449, 268435450,
  268435451, 20, 1016, 1017, 4090, 8185, 21, 248, 2042, 1018, 1019, 249, 2043, 250, 22, 23, 24, 0, 1, 2, 25, 26, 27, 28,
  29, 30, 31, 92, 251, 32764, 32, 4091, 1020, 8186, 33, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106,
  107, 108, 109, 110, 111, 112, 113, 114, 252, 115, 253, 8187, 524272, 8188, 16380, 34, 32765, 3, 35, 4, 36, 5, 37, 38,
  39, 6, 116, 117, 40, 41, 42, 7, 43, 118, 44, 8, 9, 45, 119, 120, 121, 122, 123, 32766, 2044, 16381, 8189, 268435452,
  1048550, 4194258, 1048551, 1048552, 4194259, 4194260, 4194261, 8388569, 4194262, 8388570, 8388571, 8388572, 8388573,
  8388574, 16777195, 8388575, 16777196, 16777197, 4194263, 8388576, 16777198, 8388577, 8388578, 8388579, 8388580,
  2097116, 4194264, 8388581, 4194265, 8388582, 8388583, 16777199, 4194266, 2097117, 1048553, 4194267, 4194268, 8388584,
  8388585, 2097118, 8388586, 4194269, 4194270, 16777200, 2097119, 4194271, 8388587, 8388588, 2097120, 2097121, 4194272,
  2097122, 8388589, 4194273, 8388590, 8388591, 1048554, 4194274, 4194275, 4194276, 8388592, 4194277, 4194278, 8388593,
  67108832, 67108833, 1048555, 524273, 4194279, 8388594, 4194280, 33554412, 67108834, 67108835, 67108836, 134217694,
  134217695, 67108837, 16777201, 33554413, 524274, 2097123, 67108838, 134217696, 134217697, 67108839, 134217698,
  16777202, 2097124, 2097125, 67108840, 67108841, 268435453, 134217699, 134217700, 134217701, 1048556, 16777203,
  1048557, 2097126, 4194281, 2097127, 2097128, 8388595, 4194282, 4194283, 33554414, 33554415, 16777204, 16777205,
  67108842, 8388596, 67108843, 134217702, 67108844, 67108845, 134217703, 134217704, 134217705, 134217706, 134217707,
  268435454, 134217708, 134217709, 134217710, 134217711, 134217712, 67108846, 1073741823,
];
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
];
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
