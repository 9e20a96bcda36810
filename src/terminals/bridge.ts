// bridge: translates between WebSocket and HTTP. `to: sse` streams an upstream WebSocket to a client's GET as
// Server-Sent Events (proxy/bridge-sse.ts); `to: http` takes WebSocket clients and POSTs each of their messages
// upstream, each answer a message back (proxy/bridge-http.ts).
import type { BridgeConfig } from '../config/bridge-schema.ts';
import { HttpBridge } from '../proxy/bridge-http.ts';
import { bridgeToSse } from '../proxy/bridge-sse.ts';
import { sendProblem } from '../pipeline/reply.ts';
import { defineTerminal } from './terminal.ts';

export const bridgeTerminal = defineTerminal<BridgeConfig>({
  key: 'bridge',
  compile(config, env) {
    const pool = env.upstreams.get(config.upstream)!;
    const route = env.route;
    const timeouts = { ...pool.config.timeouts, ...definedOnly(route.timeouts) };
    const headerPolicy = {
      preserveHost: pool.config.preserveHost,
      requestIdHeader: env.requestIdHeader,
      consumerNameHeader: env.consumerHeaders.name,
      consumerGroupsHeader: env.consumerHeaders.groups,
      overrideHeaders: route.forwardOverrideHeaders.length > 0 ? new Set(route.forwardOverrideHeaders) : null,
    };
    if (config.to === 'sse') {
      const plan = {
        ...headerPolicy,
        pool,
        chain: env.chain,
        path: config.path,
        connectTimeout: timeouts.connect,
        maxPayload: env.maxBodySize,
        sendTimeout: env.sendTimeout,
      };
      return {
        run: (ctx) => bridgeToSse(ctx, plan),
        upgrade: (ctx) =>
          sendProblem(ctx, env.chain, 'TP_BAD_REQUEST', 'this route answers Server-Sent Events, not WebSocket'),
        upstreamName: config.upstream,
        forward: null,
      };
    }
    const bridge = new HttpBridge({
      ...headerPolicy,
      pool,
      chain: env.chain,
      path: config.path,
      contentType: config.contentType ?? null,
      maxBodySize: env.maxBodySize,
      headersTimeout: Math.min(timeouts.response, env.requestTimeout),
      bodyTimeout: timeouts.idle,
      idleTimeout: timeouts.idle,
    });
    return {
      run: (ctx) => bridge.refuse(ctx),
      upgrade: (ctx, socket, head, opened) => bridge.upgrade(ctx, socket, head, opened),
      upstreamName: config.upstream,
      forward: null,
    };
  },
});

/** The keys of `o` whose value is set (a route's timeout overrides only what it names). */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
