// GET /api/events: the event stream as Server-Sent Events (`event: <type>`, `data: <json>`), filtered by
// ?route=NAME and ?upstream=NAME; a comment line every 15 s keeps proxies from closing an idle stream.
import { subscribeFeed } from '../event-feed.ts';
import { defineAdminEndpoint } from '../endpoint.ts';
import { runningGateway } from '../running.ts';

const KEEPALIVE_MS = 15_000;
/** A reader this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED = 1024 * 1024;

export const getEvents = defineAdminEndpoint({
  method: 'GET',
  path: '/api/events',
  auth: 'token',
  summary: 'the event stream (requests, breaker, health, ejections, reloads) as Server-Sent Events',
  query: ['route', 'upstream'],
  handle(req, res, _params, admin) {
    const runtime = runningGateway(admin);
    const query = new URL(req.url ?? '/', 'http://admin').searchParams;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write(': turnpike events\n\n');
    const unsubscribe = subscribeFeed(
      runtime.gateway,
      { route: query.get('route') ?? undefined, upstream: query.get('upstream') ?? undefined },
      (e) => {
        if (res.writableLength > MAX_BUFFERED) res.destroy();
        else res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      },
    );
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS).unref();
    res.once('close', () => {
      clearInterval(keepalive);
      unsubscribe();
    });
  },
});
