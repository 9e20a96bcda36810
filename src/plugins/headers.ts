// headers: set, add or remove request headers (sent upstream) and response headers (sent to the client).
import { z } from 'zod';
import { headerName } from '../config/primitives.ts';
import { appendFieldLine } from '../http/header-list.ts';
import type { RequestContext } from '../request-context.ts';
import { continues } from './explain-support.ts';
import { definePlugin } from './types.ts';

const side = z.strictObject({
  set: z
    .record(headerName, z.string())
    .default({})
    .meta({ description: 'headers set, replacing any of the same name', examples: [{ 'x-gateway': 'turnpike' }] }),
  add: z
    .record(headerName, z.string())
    .default({})
    .meta({ description: 'headers added beside any of the same name', examples: [{ via: 'turnpike' }] }),
  remove: z
    .array(headerName)
    .default([])
    .meta({ description: 'headers removed', examples: [['cookie']] }),
});

const schema = z.strictObject({
  request: side.optional().meta({ description: 'changes to the request that goes upstream' }),
  response: side.optional().meta({ description: 'changes to the response the client gets' }),
});

export const headersPlugin = definePlugin({
  name: 'headers',
  phase: 'transform-request',
  description: 'Sets, adds or removes request headers (upstream) and response headers (to the client)',
  schema,
  create(config) {
    const req = config.request;
    const res = config.response;
    const reqSet = req ? Object.entries(req.set) : [];
    const reqAdd = req ? Object.entries(req.add) : [];
    const reqRemove = req ? req.remove : [];
    const resSet = res ? Object.entries(res.set) : [];
    const resAdd = res ? Object.entries(res.add) : [];
    const resRemove = res ? res.remove : [];
    const hasRequest = reqSet.length + reqAdd.length + reqRemove.length > 0;
    const hasResponse = resSet.length + resAdd.length + resRemove.length > 0;
    const request = hasRequest
      ? (ctx: RequestContext) => {
          for (const name of reqRemove) ctx.removeRequestHeader(name);
          for (const [name, value] of reqSet) ctx.setRequestHeader(name, value);
          for (const [name, value] of reqAdd) (ctx.setRequestHeaders ??= []).push(name, value);
        }
      : undefined;
    const names = (list: readonly (readonly [string, string])[]) => list.map(([n]) => n);
    return {
      request,
      explain(ctx) {
        request?.(ctx);
        const upstream = { set: names(reqSet), add: names(reqAdd), remove: reqRemove };
        const client = { set: names(resSet), add: names(resAdd), remove: resRemove };
        const said = (side: string, c: typeof upstream) =>
          (['set', 'add', 'remove'] as const)
            .filter((op) => c[op].length > 0)
            .map((op) => `${side} ${op}s ${c[op].join(', ')}`);
        const parts = [...said('request', upstream), ...said('response', client)];
        return continues(parts.join('; ') || 'nothing to change', { request: upstream, response: client });
      },
      response: hasResponse
        ? (_ctx, head) => {
            const h = head.headers;
            for (const name of resRemove) delete h[name];
            for (const [name, value] of resSet) h[name] = value;
            for (const [name, value] of resAdd) appendFieldLine(h, name, value);
          }
        : undefined,
    };
  },
});
