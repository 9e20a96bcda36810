// compress: gzip, brotli or zstd on the way to the client, chosen from Accept-Encoding with q-values, streamed
// (the body is never held whole). Never for an already encoded response, a 206, `Cache-Control: no-transform`,
// a type not listed, or a body known to be under minSize. Adds `Vary: Accept-Encoding`; drops Content-Length.
import { z } from 'zod';
import { size } from '../config/primitives.ts';
import { createEncoder, ENCODINGS, negotiate } from '../http/codings.ts';
import { addListToken } from '../http/header-list.ts';
import type { ResponseHead } from '../request-context.ts';
import { continues } from './explain-support.ts';
import { definePlugin } from './types.ts';

const DEFAULT_TYPES = ['text/*', 'application/json', 'application/javascript', 'application/xml', 'image/svg+xml'];

const schema = z.strictObject({
  encodings: z
    .array(z.enum(ENCODINGS))
    .min(1)
    .default([...ENCODINGS])
    .meta({ description: 'the server preference, first wins on equal q', examples: [['br', 'gzip']] }),
  minSize: size
    .prefault('1kb')
    .meta({ description: 'bodies known to be smaller are sent as they are', examples: ['2kb'] }),
  types: z
    .array(
      z.string().regex(/^[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+)$/i, {
        message: 'expected a media type such as text/* or application/json',
      }),
    )
    .default(DEFAULT_TYPES)
    .meta({
      description: 'media types compressed (text/* for a whole type)',
      examples: [['text/*', 'application/json']],
    }),
  level: z
    .enum(['fast', 'default'])
    .default('fast')
    .meta({
      description: 'fast: cheap on CPU for on-the-fly compression (gzip 4, brotli 4, zstd 3)',
      examples: ['default'],
    }),
});

export const compressPlugin = definePlugin({
  name: 'compress',
  phase: 'compress',
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
      explain(ctx) {
        const accept = ctx.req.headers['accept-encoding'];
        const encoding = negotiate(Array.isArray(accept) ? accept.join(',') : accept, config.encodings);
        return continues(
          encoding === undefined
            ? 'the client accepts none of the encodings: responses go uncompressed'
            : `${encoding} for responses of the configured types from ${config.minSize} bytes`,
          { encoding: encoding ?? null },
        );
      },
      // Negotiated in the response hook, from the request's header: no per-request state to carry between hooks.
      response(ctx, head: ResponseHead) {
        const h = head.headers;
        // Whatever happens, the response depends on Accept-Encoding for caches.
        addListToken(h, 'vary', 'Accept-Encoding');
        // Only bodies a terminal produces stream through an encoder; local replies and hits are sent as they are.
        const body = head.body;
        if (body === null || ctx.req.method === 'HEAD') return;
        if (head.status < 200 || head.status === 204 || head.status === 206 || head.status === 304) return;
        if (h['content-encoding'] !== undefined && String(h['content-encoding']) !== 'identity') return;
        if (/(^|,)\s*no-transform\s*(,|$)/i.test(String(h['cache-control'] ?? ''))) return;
        const type = h['content-type'];
        if (type === undefined || !typeAllowed(String(type))) return;
        const length = h['content-length'];
        if (length !== undefined && Number(length) < config.minSize) return;
        const accept = ctx.req.headers['accept-encoding'];
        const encoding = negotiate(Array.isArray(accept) ? accept.join(',') : accept, config.encodings);
        if (encoding === undefined) return;
        h['content-encoding'] = encoding;
        delete h['content-length'];
        // A strong validator names the exact bytes; these are new bytes (RFC 9110 8.8.1), so it turns weak.
        const etag = h.etag;
        if (typeof etag === 'string' && !etag.startsWith('W/')) h.etag = `W/${etag}`;
        body.transform(createEncoder(encoding, config.level));
      },
    };
  },
});
