// The `cacheKey` of forward-auth: a template such as '{headers.authorization}' or '{cookie.session}|{method}',
// parsed once at load into literal text and lookups; rendered per request, then hashed (it holds credentials).
import { createHash } from 'node:crypto';
import { cookieValue } from '../http/cookies.ts';
import { queryValue } from '../http/query.ts';
import type { RequestContext } from '../request-context.ts';

type Lookup = (ctx: RequestContext) => string;
export type KeyTemplate = readonly (string | Lookup)[];

const NAME = /^[A-Za-z0-9_.~-]+$/;
const FORMS = '{headers.NAME}, {cookie.NAME}, {query.NAME}, {params.NAME}, {method}, {path}, {host}, {client.ip}';

function header(ctx: RequestContext, name: string): string {
  const v = ctx.req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
}

function lookupOf(expr: string): Lookup | string {
  switch (expr) {
    case 'method':
      return (ctx) => ctx.req.method ?? '';
    case 'path':
      return (ctx) => ctx.path;
    case 'host':
      return (ctx) => ctx.host;
    case 'client.ip':
      return (ctx) => ctx.clientIp;
    case 'consumer.name':
      return (ctx) => ctx.identity?.consumer?.name ?? '';
  }
  const dot = expr.indexOf('.');
  const head = expr.slice(0, dot);
  const name = expr.slice(dot + 1);
  if (dot === -1 || !NAME.test(name)) return `{${expr}}: expected one of ${FORMS}`;
  switch (head) {
    case 'headers': {
      const lower = name.toLowerCase();
      return (ctx) => header(ctx, lower);
    }
    case 'cookie':
      return (ctx) => {
        const c = ctx.req.headers.cookie;
        return c === undefined ? '' : (cookieValue(c, name) ?? '');
      };
    case 'query':
      return (ctx) => queryValue(ctx.query, name) ?? '';
    case 'params':
      return (ctx) => ctx.params[name] ?? '';
  }
  return `{${expr}}: expected one of ${FORMS}`;
}

/** Parses `text`; a string is the reason it is not a key template. */
export function parseKeyTemplate(text: string): KeyTemplate | string {
  const parts: (string | Lookup)[] = [];
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('{', at);
    const close = text.indexOf('}', at);
    if (close !== -1 && (open === -1 || close < open)) return `"}" at ${close + 1} closes no "{"`;
    if (open === -1) {
      parts.push(text.slice(at));
      break;
    }
    if (open > at) parts.push(text.slice(at, open));
    const end = text.indexOf('}', open);
    if (end === -1) return `"{" at ${open + 1} is not closed`;
    const lookup = lookupOf(text.slice(open + 1, end));
    if (typeof lookup === 'string') return lookup;
    parts.push(lookup);
    at = end + 1;
  }
  if (!parts.some((p) => typeof p !== 'string'))
    return `a key without a placeholder (${FORMS}) would give every request the same decision`;
  return parts;
}

/**
 * The cache key of one request: a SHA-256 of the rendered template, so the cache holds no credential. The user
 * names what the decision depends on; requests that render alike share it (an absent header renders empty).
 */
export function renderKey(template: KeyTemplate, ctx: RequestContext): string {
  let out = '';
  for (const part of template) {
    // Values are length-prefixed, so a value cannot run into the literal text and collide with another.
    if (typeof part === 'string') out += part;
    else {
      const value = part(ctx);
      out += `${value.length}:${value}`;
    }
  }
  return createHash('sha256').update(out).digest('base64url');
}
