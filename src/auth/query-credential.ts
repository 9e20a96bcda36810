// A credential carried in the query (key-auth `query`, jwt `query`): kept out of the access log, and out of the
// upstream's request with hideCredentials.
import { redactQueryParam, removeQueryParam } from '../http/query.ts';
import type { RequestContext } from '../request-context.ts';

const MASK = '[REDACTED]';

/**
 * The access log shows `[REDACTED]` for every value of query parameter `name` (ctx.logUrl), keeping what an
 * earlier authentication plugin redacted; with `hide`, the parameter is removed from the forwarded query.
 */
export function concealQueryCredential(ctx: RequestContext, name: string, hide: boolean): void {
  const shown = ctx.logUrl ?? ctx.path + ctx.query;
  const q = shown.indexOf('?');
  if (q !== -1) {
    const query = shown.slice(q);
    const redacted = redactQueryParam(query, name, MASK);
    if (redacted !== query) ctx.logUrl = shown.slice(0, q) + redacted;
  }
  if (hide) ctx.query = removeQueryParam(ctx.query, name);
}
