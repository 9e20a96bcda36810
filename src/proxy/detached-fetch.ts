// One upstream request that no client waits for (a background cache refresh): the route's pool and request
// headers, a bounded body, no retries. It goes through the pool like any request: counted on its target, refused
// while the breaker is open, its outcome fed to passive health and the breaker.
import type { Dispatcher } from 'undici';
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
export function fetchDetached(ctx: RequestContext, route: ForwardRoute, maxBody: number): Promise<DetachedResponse> {
  const lease = route.pool.beginRequest(ctx);
  if (typeof lease === 'string')
    return Promise.reject(new Error(lease === 'TP_CIRCUIT_OPEN' ? 'circuit breaker open' : 'no usable target'));
  const target = lease.target;
  const headers = upstreamRequestHeaders(ctx, route, target.origin.host, false);
  return new Promise<DetachedResponse>((resolve, reject) => {
    let status = 0;
    let responseHeaders: ResponseHead['headers'] = {};
    let chunks: Buffer[] | null = [];
    let size = 0;
    const settle = (failed: boolean): void => {
      lease.observe(failed);
      lease.end();
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(_controller, statusCode, h) {
        status = statusCode;
        responseHeaders = clientResponseHeaders(h, route.pool.hidden);
      },
      onResponseData(controller, chunk) {
        if (chunks === null) return;
        size += chunk.length;
        if (size > maxBody) {
          chunks = null;
          controller.abort(new Error('over maxObjectSize'));
          settle(false);
          resolve({ status, headers: responseHeaders, body: null });
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        settle(status >= 500);
        resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks ?? [], size) });
      },
      onResponseError(_controller, err) {
        if (chunks === null) return; // aborted by us, already answered
        settle(true);
        reject(err);
      },
    };
    target.dispatcher.dispatch(
      {
        path: ctx.path + ctx.query,
        method: 'GET',
        headers,
        headersTimeout: route.headersTimeout,
        bodyTimeout: route.bodyTimeout,
      },
      handler,
    );
  });
}
