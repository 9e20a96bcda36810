// Whether an upstream try got a new connection, and how long it waited for it (for the access log's
// upstreamConnectMs). undici does not tell a request handler which socket it got, so this reads undici's own
// diagnostics channel: `undici:client:sendHeaders` ({ request, socket }) is published synchronously right after
// the handler's onRequestStart, in the same call (client-h1's writeH1). The try that just started waits here for
// that one message; a socket never seen before is a new connection, and the time from the try's start to its
// headers being written is the connect (TCP, and TLS for https targets). HTTP/2 upstreams publish no such
// message: their tries keep -1 (logged as null), like a reused connection.
import { subscribe } from 'node:diagnostics_channel';
import type { RequestContext } from '../request-context.ts';

const seen = new WeakSet<object>();
let pendingCtx: RequestContext | null = null;
let pendingStarted = 0;
let pendingPath = '';

subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: { path?: string }; socket: object };
  const fresh = !seen.has(socket);
  if (fresh) seen.add(socket);
  const ctx = pendingCtx;
  if (ctx === null) return;
  pendingCtx = null;
  // Another undici request (Node's fetch, a health probe) is not ours: the try was HTTP/2 and sent nothing here.
  if (request.path !== pendingPath) return;
  ctx.upstreamConnectMs = fresh ? performance.now() - pendingStarted : -1;
});

/** Called from a try's onRequestStart: the next request headers undici writes are this try's. */
export function awaitConnection(ctx: RequestContext, started: number, path: string): void {
  pendingCtx = ctx;
  pendingStarted = started;
  pendingPath = path;
  // Nothing came synchronously (HTTP/2): forget it before any other request is written.
  queueMicrotask(forget);
}

function forget(): void {
  pendingCtx = null;
}
