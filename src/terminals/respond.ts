// respond: answers locally with a fixed status, headers and body (health checks, stubs, maintenance pages).
import type { RouteConfig } from '../config/schema.ts';
import { sendReply } from '../pipeline/reply.ts';
import type { Reply } from '../request-context.ts';
import { defineTerminal } from './terminal.ts';

export const respondTerminal = defineTerminal<NonNullable<RouteConfig['respond']>>({
  key: 'respond',
  compile(config, env) {
    const reply: Reply = {
      status: config.status,
      headers: { 'content-type': config.contentType, ...config.headers },
      body: Buffer.from(config.body), // its length is then known without counting per request
    };
    const chain = env.chain;
    return { run: (ctx) => sendReply(ctx, chain, reply), upstreamName: '', forward: null };
  },
});
