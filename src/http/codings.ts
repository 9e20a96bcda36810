// Content codings (RFC 9110 8.4, 12.5.3): Accept-Encoding negotiation, the part of it a cache variant depends on,
// and the encoders Turnpike produces (streaming, and whole-body for a cache refresh).
import { promisify } from 'node:util';
import {
  brotliCompress,
  constants,
  createBrotliCompress,
  createGzip,
  createZstdCompress,
  gzip,
  zstdCompress,
} from 'node:zlib';
import type { Transform } from 'node:stream';

export const ENCODINGS = ['zstd', 'br', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Accept-Encoding as coding -> q (RFC 9110 12.5.3); `*` stands for codings not named. */
function weightsOf(acceptEncoding: string): Map<string, number> {
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q=([01](\.\d{0,3})?)\s*$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(name, weight);
  }
  return q;
}

/** The best encoding both sides accept: highest client q, then server preference; undefined for none. */
export function negotiate(acceptEncoding: string | undefined, offered: readonly Encoding[]): Encoding | undefined {
  if (acceptEncoding === undefined || acceptEncoding === '') return undefined;
  const q = weightsOf(acceptEncoding);
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const e of offered) {
    const weight = q.get(e) ?? q.get('*') ?? 0;
    if (weight > bestQ) {
      best = e;
      bestQ = weight;
    }
  }
  return best;
}

/**
 * What negotiation depends on in an Accept-Encoding value, for the cache's variant key: the weight of each
 * coding Turnpike or a typical upstream produces. Two values with the same weights get the same encoding from
 * either; a value naming any other coding is kept whole (it may select something else upstream).
 */
export function codingWeights(acceptEncoding: string): string {
  if (acceptEncoding === '') return '';
  const q = weightsOf(acceptEncoding);
  for (const name of q.keys()) if (!KNOWN_CODINGS.has(name)) return acceptEncoding;
  return VARIANT_CODINGS.map((e) => q.get(e) ?? q.get('*') ?? 0).join(',');
}

const VARIANT_CODINGS = [...ENCODINGS, 'deflate'];
const KNOWN_CODINGS = new Set([...VARIANT_CODINGS, 'identity', '*']);

/** Encodes a whole body at once (a cache refresh re-encoding a stored variant), at the on-the-fly levels. */
export function encodeOnce(encoding: string, body: Buffer): Promise<Buffer> {
  switch (encoding) {
    case 'gzip':
      return gzipAsync(body, { level: 4 });
    case 'br':
      return brotliAsync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } });
    case 'zstd':
      return zstdAsync(body, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
    default:
      return Promise.reject(new Error(`unknown encoding ${encoding}`));
  }
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);
const zstdAsync = promisify(zstdCompress);

/** A streaming encoder; `fast` is cheap on CPU for on-the-fly compression. */
export function createEncoder(encoding: Encoding, level: 'fast' | 'default'): Transform {
  const fast = level === 'fast';
  switch (encoding) {
    case 'gzip':
      return createGzip({ level: fast ? 4 : 6 });
    case 'br':
      return createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: fast ? 4 : 11 } });
    case 'zstd':
      return createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: fast ? 3 : 9 } });
  }
}
