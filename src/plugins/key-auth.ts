// key-auth: an API key in a header (default x-api-key) or a query parameter identifies a consumer. Keys are
// looked up by SHA-256 digest (no byte-by-byte comparison of secrets) and never logged: a key in the query is
// replaced by [REDACTED] in the access log.
import { z } from 'zod';
import { headerName } from '../config/primitives.ts';
import { NO_CLAIMS, NO_SCOPES } from '../auth/identity.ts';
import { concealQueryCredential } from '../auth/query-credential.ts';
import { queryValue } from '../http/query.ts';
import { explainAuthentication } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

const schema = z
  .strictObject({
    header: headerName.optional().meta({
      description: 'the header that carries the key (default x-api-key when no query is given)',
      examples: ['x-api-key'],
    }),
    query: z
      .string()
      .regex(/^[A-Za-z0-9_.~-]+$/, { message: 'expected a query parameter name' })
      .optional()
      .meta({
        description: 'the query parameter that carries the key (redacted in the access log)',
        examples: ['apikey'],
      }),
    hideCredentials: z
      .boolean()
      .default(false)
      .meta({ description: 'remove the key before the request goes upstream' }),
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
    const request: RequestHook = (ctx) => {
      if (ctx.identity !== null) return;
      let key: string | undefined;
      if (header !== undefined) {
        const v = ctx.req.headers[header];
        key = Array.isArray(v) ? v[0] : v;
        if (key !== undefined && hide) ctx.removeRequestHeader(header);
      }
      if (key === undefined && query !== undefined && ctx.query !== '') {
        key = queryValue(ctx.query, query);
        if (key !== undefined) concealQueryCredential(ctx, query, hide);
      }
      const consumer = key === undefined || key === '' ? undefined : env.consumers.byApiKey(key);
      if (consumer === undefined) {
        (ctx.authChallenges ??= []).push(challenge);
        return;
      }
      ctx.identity = { method: 'key-auth', consumer, subject: consumer.name, claims: NO_CLAIMS, scopes: NO_SCOPES };
    };
    const where = [header && `header ${header}`, query && `query parameter ${query}`].filter(Boolean).join(' or ');
    return {
      request,
      explain: (ctx) =>
        explainAuthentication(request, ctx, () => {
          const sent =
            (header !== undefined && ctx.req.headers[header] !== undefined) ||
            (query !== undefined && queryValue(ctx.query, query) !== undefined);
          return sent ? 'the key matches no consumer' : `no key in ${where}`;
        }),
    };
  },
});
