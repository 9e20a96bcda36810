// upstream: forwards to the route's upstream pool (streaming, retries, breaker) and tunnels WebSocket upgrades.
import { sendReply } from '../pipeline/reply.ts';
import { grpcWebRequest } from '../proxy/grpc-web.ts';
import { forward } from '../proxy/http-forwarder.ts';
import { compileRetryPolicy } from '../proxy/retry-policy.ts';
import { tunnel } from '../proxy/upgrade-tunnel.ts';
import { defineTerminal } from './terminal.ts';

export const upstreamTerminal = defineTerminal<string>({
  key: 'upstream',
  compile(name, env) {
    const pool = env.upstreams.get(name)!;
    const route = env.route;
    const timeouts = { ...pool.config.timeouts, ...definedOnly(route.timeouts) };
    const plan = {
      pool,
      chain: env.chain,
      maxBodySize: env.maxBodySize,
      headersTimeout: Math.min(timeouts.response, env.requestTimeout),
      bodyTimeout: timeouts.idle,
      clientBodyTimeout: env.clientBodyTimeout,
      sendTimeout: env.sendTimeout,
      totalTimeout: timeouts.total ?? 0,
      retry: compileRetryPolicy(pool.config),
      connectTimeout: timeouts.connect,
      idleTimeout: timeouts.idle,
      preserveHost: pool.config.preserveHost,
      requestIdHeader: env.requestIdHeader,
      consumerNameHeader: env.consumerHeaders.name,
      consumerGroupsHeader: env.consumerHeaders.groups,
      overrideHeaders: route.forwardOverrideHeaders.length > 0 ? new Set(route.forwardOverrideHeaders) : null,
      upgrades: route.upgrades.length > 0 ? new Set(route.upgrades) : null,
    };
    const grpcWeb = route.protocol === 'grpc-web';
    const chain = env.chain;
    return {
      run(ctx) {
        if (grpcWeb) {
          // gRPC-Web is translated here, after every request hook (a CORS preflight never reaches it).
          const refused = grpcWebRequest(ctx);
          if (refused !== undefined) return sendReply(ctx, chain, refused);
        }
        // Expect: 100-continue is answered only now, so a 404, 413 or 401 reaches the client before its upload.
        if (ctx.req.headers.expect !== undefined) ctx.res.writeContinue();
        forward(ctx, plan);
      },
      upgrade: (ctx, socket, head, opened) => tunnel(ctx, plan, socket, head, opened),
      upstreamName: name,
      forward: plan,
    };
  },
});

/** The keys of `o` whose value is set (a route's timeout overrides only what it names). */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
