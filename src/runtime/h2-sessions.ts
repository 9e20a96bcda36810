// Connection-level limits of an HTTP/2 session (h2c and TLS ALPN h2), which Node's http2 server does not have:
// a session with no stream open is closed (GOAWAY) after `headerTimeout` before its first request and
// `keepAliveTimeout` after one, as an idle HTTP/1.1 connection is; and after `maxRequestsPerConnection` streams it
// gets a GOAWAY, the streams in progress finishing (Envoy's max_requests_per_connection, NGINX's keepalive_requests).
import type { Http2Session } from 'node:http2';
import type { CompiledListener } from './snapshot.ts';

/** The listener's current settings (a reload updates the object in place). */
export interface SessionLimits {
  headerTimeout: number;
  keepAliveTimeout: number;
  maxRequests: number;
}

export function sessionLimitsOf(listener: CompiledListener): SessionLimits {
  return {
    headerTimeout: listener.headerTimeout,
    keepAliveTimeout: listener.keepAliveTimeout,
    maxRequests: listener.maxRequestsPerConnection,
  };
}

export function updateSessionLimits(limits: SessionLimits, listener: CompiledListener): void {
  limits.headerTimeout = listener.headerTimeout;
  limits.keepAliveTimeout = listener.keepAliveTimeout;
  limits.maxRequests = listener.maxRequestsPerConnection;
}

export function limitSession(session: Http2Session, limits: SessionLimits): void {
  let open = 0;
  let requests = 0;
  // The session's inactivity timer: it fires once after that long without a frame either way.
  if (limits.headerTimeout > 0) session.setTimeout(limits.headerTimeout);
  session.on('timeout', () => {
    if (open === 0 && !session.closed) session.close();
  });
  session.on('stream', (stream) => {
    open++;
    if (limits.maxRequests > 0 && ++requests >= limits.maxRequests && !session.closed) session.close();
    stream.once('close', () => {
      if (--open === 0 && !session.closed && !session.destroyed && limits.keepAliveTimeout > 0)
        session.setTimeout(limits.keepAliveTimeout);
    });
  });
}
