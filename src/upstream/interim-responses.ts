// Interim (1xx) responses from HTTP/1.1 targets. undici (8.x) destroys the connection on a `100 Continue` it did
// not ask for (it never sends Expect: the forwarder strips it, the listener answers the client's), while RFC 9110
// §15.2 says a client MUST parse 1xx responses it did not expect, as HAProxy and NGINX do. Its parser passes
// every other 1xx on as an interim response, which the forwarder drops: a 100 is handed over as one of those. And
// undici restarts the response timeout at each interim response; hidden from it, the timeout runs from the request
// to the final head. The parser class is not exported: its prototype is patched once, from the first connection.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';

type HeadersComplete = (statusCode: number, upgrade: boolean, shouldKeepAlive: boolean) => number;

const { kParser } = createRequire(import.meta.url)('undici/lib/core/symbols.js') as { kParser: symbol };
const CHANNEL = 'undici:client:connected';
/** Any 1xx but 100 and 101 goes through undici as an interim response; 199 names none in particular. */
const INTERIM = 199;

let patched = false;
let subscribed = false;

function onConnected(message: unknown): void {
  const socket = (message as { socket?: Record<symbol, unknown> }).socket;
  const parser = socket?.[kParser] as object | undefined; // undefined: another undici (Node's own fetch)
  if (patched || parser === undefined || parser === null) return;
  const proto = Object.getPrototypeOf(parser) as { onHeadersComplete?: HeadersComplete };
  const original = proto.onHeadersComplete;
  patched = true;
  queueMicrotask(() => unsubscribe(CHANNEL, onConnected));
  if (typeof original !== 'function') return;
  proto.onHeadersComplete = function (this: { timeout: unknown }, statusCode, upgrade, shouldKeepAlive) {
    if (statusCode >= 200 || upgrade) return original.call(this, statusCode, upgrade, shouldKeepAlive);
    // undici restarts the response timeout on every interim response: a backend sending 1xx forever would hold
    // the exchange open. Hidden from it, the timeout keeps counting from the request to the final head.
    const timeout = this.timeout;
    this.timeout = null;
    try {
      return original.call(this, statusCode === 100 ? INTERIM : statusCode, upgrade, shouldKeepAlive);
    } finally {
      this.timeout = timeout;
    }
  };
}

/** Called once when the first upstream pool is made. */
export function acceptUnaskedContinue(): void {
  if (patched || subscribed) return;
  subscribed = true;
  subscribe(CHANNEL, onConnected);
}
