// GET /api/events: the event stream as Server-Sent Events (`event: <type>`, `data: <json>`), filtered by
// ?route=NAME and ?upstream=NAME; a comment line every 15 s keeps proxies from closing an idle stream.
import { TurnpikeError } from '../../errors.ts';
import { feedMatches, subscribeFeed, type FeedEvent } from '../event-feed.ts';
import { defineAdminEndpoint } from '../endpoint.ts';

const KEEPALIVE_MS = 15_000;
/** A reader this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED = 1024 * 1024;

export const getEvents = defineAdminEndpoint({
  method: 'GET',
  path: '/api/events',
  auth: 'token',
  summary: 'the event stream (requests, breaker, health, ejections, reloads) as Server-Sent Events',
  stream: true,
  query: ['route', 'upstream'],
  handle(req, res, _params, admin) {
    const runtime = admin.runtime();
    if (runtime === null && admin.workers === null)
      throw new TurnpikeError('TP_ADMIN_NOT_READY', 'the gateway is still starting');
    const query = new URL(req.url ?? '/', 'http://admin').searchParams;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(': turnpike events\n\n');
    const filter = { route: query.get('route') ?? undefined, upstream: query.get('upstream') ?? undefined };
    // The listener may end the stream (a reload moved it): nothing is written after that, until 'close' unsubscribes.
    const send = (e: FeedEvent) => {
      if (res.writableEnded) return;
      if (res.writableLength > MAX_BUFFERED) res.destroy();
      else res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    // With workers, every worker's events come through the primary.
    const unsubscribe =
      runtime !== null
        ? subscribeFeed(runtime.gateway, filter, send)
        : admin.workers!.feed((e) => {
            if (feedMatches(e, filter)) send(e);
          });
    const keepalive = setInterval(() => res.writableEnded || res.write(': keep-alive\n\n'), KEEPALIVE_MS).unref();
    res.once('close', () => {
      clearInterval(keepalive);
      unsubscribe();
    });
  },
});
