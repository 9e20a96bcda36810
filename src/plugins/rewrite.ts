// rewrite: change the path sent upstream (strip or add a prefix, or a regex replace), NGINX `rewrite` style.
import { z } from 'zod';
import { regexSource } from '../config/primitives.ts';
import { continues } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

const schema = z
  .strictObject({
    stripPrefix: z
      .string()
      .startsWith('/')
      .optional()
      .meta({
        description: 'removed from the start of the path (on a segment boundary) before it goes upstream',
        examples: ['/orders'],
      }),
    addPrefix: z
      .string()
      .startsWith('/')
      .optional()
      .meta({ description: 'put before the path (after stripPrefix)', examples: ['/v2/orders'] }),
    regex: z
      .strictObject({
        pattern: regexSource.meta({ description: 'a regular expression on the path', examples: ['^/api/(.*)$'] }),
        replacement: z
          .string()
          .meta({ description: 'what replaces the match; $1, $<name> refer to groups', examples: ['/$1'] }),
      })
      .optional()
      .meta({ description: 'replace what a regular expression matches in the path' }),
  })
  .refine((c) => c.stripPrefix !== undefined || c.addPrefix !== undefined || c.regex !== undefined, {
    message: 'rewrite needs at least one of stripPrefix, addPrefix or regex',
  });

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

export const rewritePlugin = definePlugin({
  name: 'rewrite',
  phase: 'transform-request',
  description: 'Rewrites the upstream path: stripPrefix, addPrefix, or regex { pattern, replacement }',
  schema,
  create(config) {
    const strip = config.stripPrefix !== undefined ? trimSlash(config.stripPrefix) : undefined;
    const add = config.addPrefix !== undefined && config.addPrefix !== '/' ? trimSlash(config.addPrefix) : undefined;
    const regex = config.regex ? new RegExp(config.regex.pattern) : undefined;
    const replacement = config.regex?.replacement ?? '';
    const request: RequestHook = (ctx) => {
      let path = ctx.path;
      // Strip only on a segment boundary: /orders strips /orders and /orders/7, never /ordersX.
      if (strip !== undefined && strip !== '/' && path.startsWith(strip)) {
        const rest = path.slice(strip.length);
        if (rest === '' || rest.charCodeAt(0) === 47 /* / */) path = rest === '' ? '/' : rest;
      }
      if (regex !== undefined) path = path.replace(regex, replacement);
      if (add !== undefined) path = path === '/' ? add : add + path;
      ctx.path = path;
    };
    return {
      request,
      explain(ctx) {
        const from = ctx.path;
        request(ctx);
        return continues(from === ctx.path ? `path ${from} unchanged` : `path ${from} -> ${ctx.path}`, {
          from,
          to: ctx.path,
        });
      },
    };
  },
});
