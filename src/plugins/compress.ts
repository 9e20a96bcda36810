// compress: gzip, brotli or zstd on the way to the client, chosen from Accept-Encoding with q-values, streamed
// (the body is never held whole). Never for an already encoded response, a 206, `Cache-Control: no-transform`,
// a type not listed, or a body known to be under minSize. Adds `Vary: Accept-Encoding`; drops Content-Length.
import { promisify } from 'node:util';
import { brotliCompress, constants, createBrotliCompress, createGzip, createZstdCompress, gzip, zstdCompress } from 'node:zlib';
import type { Transform } from 'node:stream';
import { z } from 'zod';
import { size } from '../config/primitives.ts';
import type { ResponseHead } from '../request-context.ts';
import { definePlugin } from './types.ts';

const ENCODINGS = ['zstd', 'br', 'gzip'] as const;
type Encoding = (typeof ENCODINGS)[number];

const DEFAULT_TYPES = ['text/*', 'application/json', 'application/javascript', 'application/xml', 'image/svg+xml'];

const schema = z.strictObject({
  encodings: z.array(z.enum(ENCODINGS)).min(1).default([...ENCODINGS]).meta({ description: 'the server preference, first wins on equal q' }),
  minSize: size.prefault('1kb'),
  types: z.array(z.string().regex(/^[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+)$/i, { message: 'expected a media type such as text/* or application/json' })).default(DEFAULT_TYPES),
  level: z.enum(['fast', 'default']).default('fast').meta({ description: 'fast: cheap on CPU for on-the-fly compression (gzip 4, brotli 4, zstd 3)' }),
});

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

function encoder(encoding: Encoding, level: 'fast' | 'default'): Transform {
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

export const compressPlugin = definePlugin({
  name: 'compress',
  phase: 'transform-request',
  description: 'Compresses upstream responses (zstd, br, gzip) chosen from Accept-Encoding, streaming',
  schema,
  create(config) {
    const exact = new Set(config.types.filter((t) => !t.endsWith('/*')).map((t) => t.toLowerCase()));
    const prefixes = config.types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1).toLowerCase());
    const typeAllowed = (contentType: string) => {
      const base = contentType.split(';')[0]!.trim().toLowerCase();
      return exact.has(base) || prefixes.some((p) => base.startsWith(p));
    };
    return {
      // Negotiated in the response hook, from the request's header: no per-request state to carry between hooks.
      response(ctx, head: ResponseHead) {
        const h = head.headers;
        // Whatever happens, the response depends on Accept-Encoding for caches.
        const vary = h.vary === undefined ? '' : String(h.vary);
        if (!/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(vary)) h.vary = vary === '' ? 'Accept-Encoding' : `${vary}, Accept-Encoding`;
        // Only upstream bodies stream through an encoder; the gateway's own short replies are sent as they are.
        if (head.upstream !== true || ctx.req.method === 'HEAD') return;
        if (head.status < 200 || head.status === 204 || head.status === 206 || head.status === 304) return;
        if (h['content-encoding'] !== undefined && String(h['content-encoding']) !== 'identity') return;
        if (/(^|,)\s*no-transform\s*(,|$)/i.test(String(h['cache-control'] ?? ''))) return;
        const type = h['content-type'];
        if (type === undefined || !typeAllowed(String(type))) return;
        const length = h['content-length'];
        if (length !== undefined && Number(length) < config.minSize) return;
        if (ctx.bodyEncoder !== null) return;
        const accept = ctx.req.headers['accept-encoding'];
        const encoding = negotiate(Array.isArray(accept) ? accept.join(',') : accept, config.encodings);
        if (encoding === undefined) return;
        h['content-encoding'] = encoding;
        delete h['content-length'];
        // A strong validator names the exact bytes; these are new bytes (RFC 9110 8.8.1), so it turns weak.
        const etag = h.etag;
        if (typeof etag === 'string' && !etag.startsWith('W/')) h.etag = `W/${etag}`;
        ctx.bodyEncoder = encoder(encoding, config.level);
      },
    };
  },
});
