// key-auth: an API key in a header (default x-api-key) or a query parameter identifies a consumer. Keys are
// looked up by SHA-256 digest (no byte-by-byte comparison of secrets) and never logged: a key in the query is
// replaced by [REDACTED] in the access log.
import { z } from 'zod';
import { headerName } from '../config/primitives.ts';
import { NO_CLAIMS, NO_SCOPES } from '../auth/identity.ts';
import { definePlugin } from './types.ts';

const schema = z
  .strictObject({
    header: headerName.optional(),
    query: z.string().regex(/^[A-Za-z0-9_.~-]+$/, { message: 'expected a query parameter name' }).optional(),
    hideCredentials: z.boolean().default(false),
  })
  .transform((c) => ({ ...c, header: c.header ?? (c.query === undefined ? 'x-api-key' : undefined) }));

export const keyAuthPlugin = definePlugin({
  name: 'key-auth',
  phase: 'authenticate',
  description: 'Identifies a consumer by an API key in a header or query parameter',
  schema,
  create(config, env) {
    const header = config.header;
    const query = config.query;
    const challenge = `Key realm="turnpike"${header ? `, header="${header}"` : ''}${query ? `, query="${query}"` : ''}`;
    const hide = config.hideCredentials;
    return {
      request(ctx) {
        if (ctx.identity !== null) return;
        let key: string | undefined;
        if (header !== undefined) {
          const v = ctx.req.headers[header];
          key = Array.isArray(v) ? v[0] : v;
          if (key !== undefined && hide) ctx.removeRequestHeader(header);
        }
        if (key === undefined && query !== undefined && ctx.query !== '') {
          const found = queryParam(ctx.query, query);
          if (found !== undefined) {
            key = decodeURIComponentSafe(found.value);
            ctx.logUrl = ctx.path + redact(ctx.query, found);
            if (hide) ctx.query = removeParam(ctx.query, found);
          }
        }
        const consumer = key === undefined || key === '' ? undefined : env.consumers.byApiKey(key);
        if (consumer === undefined) {
          (ctx.authChallenges ??= []).push(challenge);
          return;
        }
        ctx.identity = { method: 'key-auth', consumer, subject: consumer.name, claims: NO_CLAIMS, scopes: NO_SCOPES };
      },
    };
  },
});

interface Found {
  readonly start: number; // index of the parameter's name
  readonly end: number; // index after its value
  readonly valueStart: number;
  readonly value: string;
}

function queryParam(query: string, name: string): Found | undefined {
  let i = 1;
  while (i < query.length) {
    const end = query.indexOf('&', i) === -1 ? query.length : query.indexOf('&', i);
    if (query.startsWith(name, i) && query.charCodeAt(i + name.length) === 61 && i + name.length < end) {
      return { start: i, end, valueStart: i + name.length + 1, value: query.slice(i + name.length + 1, end) };
    }
    i = end + 1;
  }
  return undefined;
}

function redact(query: string, f: Found): string {
  return query.slice(0, f.valueStart) + '[REDACTED]' + query.slice(f.end);
}

function removeParam(query: string, f: Found): string {
  const rest = (query.slice(1, f.start) + query.slice(f.end + 1)).replace(/&$/, '');
  return rest === '' ? '' : `?${rest}`;
}

function decodeURIComponentSafe(v: string): string {
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    return v;
  }
}
