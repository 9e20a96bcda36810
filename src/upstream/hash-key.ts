// The request's hash key for consistent-hash and ip-hash, from the upstream's `hashOn`.
import type { HashSource } from '../config/upstream-schema.ts';
import { cookieValue } from '../http/cookies.ts';
import { queryValue } from '../http/query.ts';
import type { RequestContext } from '../request-context.ts';

/** The request's hash key for consistent-hash / ip-hash ('' when the request lacks it: the balancer rotates). */
export function hashKey(ctx: RequestContext, source: HashSource): string {
  switch (source.kind) {
    case 'ip':
      return ctx.clientIp;
    case 'path':
      return ctx.path;
    case 'header': {
      const v = ctx.req.headers[source.name];
      return v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie': {
      const header = ctx.req.headers.cookie;
      return header === undefined ? '' : (cookieValue(header, source.name) ?? '');
    }
    case 'query':
      return queryValue(ctx.query, source.name) ?? '';
  }
}

/** `header:x-user`, `ip`: the source as the config names it. */
export function hashSourceName(source: HashSource): string {
  return 'name' in source ? `${source.kind}:${source.name}` : source.kind;
}
