// cors: answers CORS preflights at the gateway and adds the CORS headers to actual responses (Kong's model).
// The gateway owns the CORS response headers of a route that uses this plugin: an allowed origin gets ours,
// a disallowed one gets none (even if the upstream sent its own).
import { z } from 'zod';
import { duration, headerName, httpMethod } from '../config/primitives.ts';
import { addListToken } from '../http/header-list.ts';
import type { Reply } from '../request-context.ts';
import { answers, continues } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

// scheme://host[:port]: host is DNS labels (the first may be `*` for a pattern) or a bracketed IPv6 literal.
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(?:(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

const origin = z
  .string()
  // Browsers send origins lowercase and without the scheme's default port.
  .transform((s) => s.toLowerCase().replace(/^(https:\/\/.*):443$|^(http:\/\/.*):80$/, '$1$2'))
  .refine((s) => s === '*' || ORIGIN.test(s), {
    message:
      'expected an origin such as https://app.example.com (scheme, host and optional port; no path or trailing slash), a pattern such as https://*.example.com, or *',
  })
  .meta({ examples: ['https://app.example.com'] });

const DEFAULT_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'];

const schema = z
  .strictObject({
    origins: z
      .array(origin)
      .min(1)
      .meta({
        description: 'allowed origins: https://app.example.com, https://*.example.com (subdomains), or * (any)',
        examples: [['https://app.example.com', 'https://*.example.com']],
      }),
    methods: z
      .array(httpMethod)
      .min(1)
      .default(DEFAULT_METHODS)
      .meta({ description: 'methods allowed in cross-origin requests', examples: [['GET', 'POST']] }),
    headers: z
      .array(headerName)
      .optional()
      .meta({
        description:
          'Allowed request headers; when omitted, the headers a preflight asks for are echoed (as Kong does)',
        examples: [['content-type', 'authorization']],
      }),
    exposeHeaders: z
      .array(headerName)
      .default([])
      .meta({
        description: 'response headers scripts may read (Access-Control-Expose-Headers)',
        examples: [['x-request-id']],
      }),
    credentials: z
      .boolean()
      .default(false)
      .meta({ description: 'allow cookies and credentials (Access-Control-Allow-Credentials); not with origins *' }),
    maxAge: duration.optional().meta({
      description: 'How long browsers may cache a preflight (Access-Control-Max-Age, whole seconds)',
      examples: ['10m'],
    }),
  })
  .refine((c) => !(c.credentials && c.origins.includes('*')), {
    message:
      'origins "*" cannot be used with credentials: true (browsers refuse a wildcard origin on credentialed requests); list the allowed origins instead',
    path: ['origins'],
  });

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `https://*.example.com` → one or more DNS labels before `.example.com`, anchored at both ends, so
 * neither the bare apex, nor `https://example.com.evil.com`, nor `https://evil.com/.example.com` match.
 */
function patternSource(pattern: string): string {
  const star = pattern.indexOf('*.');
  const label = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
  return `${escapeRegex(pattern.slice(0, star))}(?:${label}\\.)+${escapeRegex(pattern.slice(star + 2))}`;
}

/** A comma list of header names, as Access-Control-Request-Headers should be; anything else is not echoed. */
const HEADER_LIST = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/;

const GRPC_WEB_REQUEST = ['content-type', 'x-grpc-web', 'x-user-agent', 'grpc-timeout'];
const GRPC_WEB_EXPOSE = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

/** `list` and then those of `more` it lacks (header names: case-insensitive). */
function withTokens(list: readonly string[], more: readonly string[]): string[] {
  const have = new Set(list.map((h) => h.toLowerCase()));
  return [...list, ...more.filter((h) => !have.has(h))];
}

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

export const corsPlugin = definePlugin({
  name: 'cors',
  phase: 'access',
  description:
    'Cross-origin resource sharing: answers preflights (204) and adds Access-Control-* headers for allowed origins (exact, https://*.example.com patterns, or *)',
  schema,
  create(config, env) {
    const any = config.origins.includes('*');
    const exact = new Set(config.origins.filter((o) => o !== '*' && !o.includes('*.')));
    const patterns = config.origins.filter((o) => o.includes('*.'));
    for (const p of patterns) {
      const host = p.slice(p.indexOf('*.') + 2).replace(/:\d+$/, '');
      if (!host.includes('.'))
        env.warn(`cors origin ${p} allows every site under .${host}; was a narrower pattern meant?`);
    }
    const pattern = patterns.length > 0 ? new RegExp(`^(?:${patterns.map(patternSource).join('|')})$`) : null;
    const credentials = config.credentials;
    const allowMethods = config.methods.join(', ');
    // gRPC-Web: scripts must read the status (in headers on a trailers-only answer) and send the client's headers.
    const grpcWeb = env.routeProtocol === 'grpc-web';
    const allowHeaders = (
      grpcWeb && config.headers ? withTokens(config.headers, GRPC_WEB_REQUEST) : config.headers
    )?.join(', ');
    const expose = grpcWeb ? withTokens(config.exposeHeaders, GRPC_WEB_EXPOSE) : config.exposeHeaders;
    const exposeHeaders = expose.length > 0 ? expose.join(', ') : undefined;
    const maxAge = config.maxAge !== undefined ? String(Math.floor(config.maxAge / 1000)) : undefined;

    /** The Access-Control-Allow-Origin value for this request's origin, or undefined when it is not allowed. */
    const allowOrigin = (requestOrigin: string): string | undefined => {
      if (any) return '*';
      const o = requestOrigin.toLowerCase();
      if (exact.has(o) || (pattern !== null && pattern.test(o))) return requestOrigin;
      return undefined;
    };

    const preflight = (requestOrigin: string, requestHeaders: string | undefined): Reply => {
      const allowed = allowOrigin(requestOrigin);
      // A disallowed origin gets an empty 204, as Kong answers it: the browser then refuses the real request.
      if (allowed === undefined) return { status: 204, headers: { vary: PREFLIGHT_VARY } };
      const headers: Record<string, string> = {
        'access-control-allow-origin': allowed,
        'access-control-allow-methods': allowMethods,
        vary: PREFLIGHT_VARY,
      };
      if (credentials) headers['access-control-allow-credentials'] = 'true';
      const allowH =
        allowHeaders ?? (requestHeaders !== undefined && HEADER_LIST.test(requestHeaders) ? requestHeaders : undefined);
      if (allowH) headers['access-control-allow-headers'] = allowH;
      if (maxAge !== undefined) headers['access-control-max-age'] = maxAge;
      return { status: 204, headers };
    };

    const request: RequestHook = (ctx) => {
      const req = ctx.req;
      if (req.method !== 'OPTIONS') return undefined;
      const h = req.headers;
      const requestOrigin = h.origin;
      const requestMethod = h['access-control-request-method'];
      if (requestOrigin === undefined || requestMethod === undefined) return undefined;
      return preflight(requestOrigin, h['access-control-request-headers']);
    };
    return {
      request,
      explain(ctx) {
        const origin = ctx.req.headers.origin;
        const reply = request(ctx) as Reply | undefined;
        if (reply !== undefined) return answers(reply, `preflight from ${origin}`);
        if (origin === undefined) return continues('no Origin: not a cross-origin request');
        const allowed = allowOrigin(origin) !== undefined;
        return continues(`origin ${origin} ${allowed ? 'allowed' : 'not allowed'}`, { origin, allowed });
      },
      response(ctx, head) {
        const h = ctx.req.headers;
        const requestOrigin = h.origin;
        // Our own preflight answer is complete (a preflight never gets past this plugin).
        if (
          requestOrigin !== undefined &&
          ctx.req.method === 'OPTIONS' &&
          h['access-control-request-method'] !== undefined
        )
          return;
        // Caches must key on Origin: the same URL answers with or without CORS headers.
        addListToken(head.headers, 'vary', 'Origin');
        if (requestOrigin === undefined) return;
        const out = head.headers;
        const allowed = allowOrigin(requestOrigin);
        if (allowed === undefined) {
          delete out['access-control-allow-origin'];
          delete out['access-control-allow-credentials'];
          delete out['access-control-expose-headers'];
          return;
        }
        out['access-control-allow-origin'] = allowed;
        if (credentials) out['access-control-allow-credentials'] = 'true';
        else delete out['access-control-allow-credentials'];
        if (exposeHeaders !== undefined) out['access-control-expose-headers'] = exposeHeaders;
        else delete out['access-control-expose-headers'];
      },
    };
  },
});
