// One upstream request that no client waits for (a background cache refresh): the route's pool and request
// headers, a bounded body, no retries. Passive health still hears about the outcome.
import type { RequestContext, ResponseHead } from '../request-context.ts';
import type { ForwardRoute } from './http-forwarder.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';

export interface DetachedResponse {
  readonly status: number;
  /** As a client would get them (the pool's hidden headers removed). */
  readonly headers: ResponseHead['headers'];
  /** The body, or null when it was over `maxBody` bytes. */
  readonly body: Buffer | null;
}

/** Sends the request `ctx` describes (its method as GET) to a target of the route; must be called while ctx is live. */
export async function fetchDetached(ctx: RequestContext, route: ForwardRoute, maxBody: number): Promise<DetachedResponse> {
  const target = route.pool.pick(ctx);
  if (target === undefined) throw new Error('no usable target');
  const headers = upstreamRequestHeaders(ctx, route, target.origin.host, false);
  const path = ctx.path + ctx.query;
  const started = performance.now();
  target.active++;
  try {
    const res = await target.dispatcher.request({
      path,
      method: 'GET',
      headers,
      headersTimeout: route.headersTimeout,
      bodyTimeout: route.bodyTimeout,
    });
    route.pool.observe(target, performance.now() - started, res.statusCode >= 500);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBody) {
        res.body.destroy();
        return { status: res.statusCode, headers: clientResponseHeaders(res.headers, route.pool.hidden), body: null };
      }
      chunks.push(chunk);
    }
    return { status: res.statusCode, headers: clientResponseHeaders(res.headers, route.pool.hidden), body: Buffer.concat(chunks, size) };
  } catch (err) {
    route.pool.observe(target, performance.now() - started, true);
    throw err;
  } finally {
    target.active--;
  }
}
