// Failing politely: a route's `fallback` answer and the top-level `errorPages` (src/pipeline/fallback.ts,
// src/pipeline/error-pages.ts).
import { z } from 'zod';
import { headerName } from './primitives.ts';

/** The terminals that call upstreams: only beside one of them does a fallback have something to stand in for. */
export const FALLBACK_TERMINALS = ['upstream', 'split', 'aggregate', 'grpcTranscode'] as const;

const status = z.number().int().min(100).max(599);

export const fallback = z
  .strictObject({
    status: status.meta({ description: 'the status of the fallback answer', examples: [503] }),
    contentType: z
      .string()
      .min(1)
      .meta({ description: 'the Content-Type of the body', examples: ['application/json'] }),
    body: z
      .string()
      .default('')
      .meta({ description: 'the body, as written', examples: ['{"error":"resting, try again soon"}'] }),
    onStatus: z
      .array(status.min(500))
      .default([])
      .meta({
        description:
          "upstream statuses (5xx) answered with the fallback too; without them an upstream's own answer is relayed",
        examples: [[500, 503]],
      }),
    headers: z
      .record(headerName, z.string())
      .default({})
      .meta({ description: 'more response headers (a retry-after here wins)', examples: [{ 'retry-after': '30' }] }),
  })
  .meta({
    description:
      'the answer when the upstream cannot give one (no healthy target, breaker open, connect failure or timeout after retries); a cache stale copy comes first',
    examples: [{ status: 503, contentType: 'application/json', body: '{"error":"try again soon"}' }],
  });

/** `404`, `503` or a class, `4xx` / `5xx`. */
const pageKey = z.string().regex(/^(?:[45]\d\d|[45]xx)$/, { message: 'expected a status (404) or a class (4xx, 5xx)' });

export const errorPages = z
  .strictObject({
    html: z
      .record(pageKey, z.string().min(1))
      .default({})
      .meta({
        description:
          'HTML files (relative to the config file) by status or class, for clients that prefer text/html; read at load',
        examples: [{ 404: 'pages/404.html', '5xx': 'pages/5xx.html' }],
      }),
  })
  .meta({
    description:
      "pages for the gateway's own errors (problem+json stays for API clients); an exact status wins over its class",
    examples: [{ html: { 404: 'pages/404.html', '5xx': 'pages/5xx.html' } }],
  });

export type FallbackConfig = z.output<typeof fallback>;
export type ErrorPagesConfig = z.output<typeof errorPages>;
