// redirect: answers with a Location to another URL, optionally keeping the rest of the path and the query.
import type { RouteConfig } from '../config/schema.ts';
import { sendReply } from '../pipeline/reply.ts';
import { defineTerminal } from './terminal.ts';

export const redirectTerminal = defineTerminal<NonNullable<RouteConfig['redirect']>>({
  key: 'redirect',
  compile(config, env) {
    const path = env.route.match.path;
    const literal =
      typeof path === 'string' && !path.includes(':')
        ? path
        : typeof path === 'object' && 'prefix' in path
          ? path.prefix
          : '';
    // Removed before appending the rest of the path: the route's literal path prefix.
    const prefixLength = literal === '/' ? 0 : literal.replace(/\/$/, '').length;
    const to = config.to.endsWith('/') && config.appendPath ? config.to.slice(0, -1) : config.to;
    const { status, appendPath } = config;
    const chain = env.chain;
    return {
      run(ctx) {
        const location = appendPath ? to + ctx.path.slice(prefixLength) + ctx.query : to;
        sendReply(ctx, chain, {
          status,
          headers: { location, 'content-type': 'text/plain; charset=utf-8' },
          body: `Redirecting to ${location}\n`,
        });
      },
      upstreamName: '',
      forward: null,
    };
  },
});
