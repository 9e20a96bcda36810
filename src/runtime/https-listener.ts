// HTTPS listeners: TLS with SNI-selected certificates, HTTP/2 and HTTP/1.1 offered through ALPN, the same
// request handling as plain HTTP. Certificates come from a CertificateStore the runtime can swap on reload.
import {
  constants as http2Constants,
  createServer as createH2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { AcmeManager } from '../acme/manager.ts';
import type { HttpsListenerConfig } from '../config/listener-schema.ts';
import type { CertificateStore } from '../tls/certificate-store.ts';
import {
  clientErrorHandler,
  handleRequest,
  handleUpgrade,
  upgradeCallback,
  type ListenerHost,
} from './http-listener.ts';
import { limitSession, sessionLimitsOf, updateSessionLimits } from './h2-sessions.ts';
import type { CompiledListener } from './snapshot.ts';
import { guardConnections, handleH2Request, onSession, sessionOptions } from './h2-session.ts';

export interface HttpsServer {
  readonly server: Http2SecureServer;
  /** Serves new handshakes from another store (a reload changed the listener's certificates; null: acme alone). */
  useStore(store: CertificateStore | null): void;
  /** The ACME certificate changed: a listener without tls certificates serves it by default (clients without SNI). */
  acmeChanged(): void;
  /** Asks every HTTP/2 session to finish its streams and close (GOAWAY): graceful drain. */
  closeSessions(): void;
  /** Applies a new snapshot's timeouts and limits to a server that stays open across a reload. */
  update(listener: CompiledListener): void;
}

export function createHttpsServer(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
  store: CertificateStore | null,
  acme: () => AcmeManager | undefined,
): HttpsServer {
  const config = listener.config as HttpsListenerConfig;
  let current = store;
  const sessions = new Set<Http2Session>();
  const limits = sessionLimitsOf(listener);
  const defaults = (): TlsOptions => current?.secureOptions() ?? { ...acme()?.defaultContext, requestCert: false };
  const server = createSecureServer(
    {
      ...defaults(),
      // The store and the ACME manager behind this callback can change on reload; the server keeps calling through
      // it. ACME certificates (and a pending tls-alpn-01 challenge's) win for their names.
      SNICallback: (name, cb) => {
        const ctx = acme()?.contextFor(name);
        if (ctx !== undefined) cb(null, ctx);
        else if (current !== null) current.sniCallback(name, cb);
        else cb(null, undefined); // the server's default context: the ACME certificate
      },
      allowHTTP1: true,
      // Instead of ALPNProtocols (the same choice: h2 first), so that a tls-alpn-01 validation gets acme-tls/1.
      ALPNCallback: ({ servername, protocols }) => {
        if (protocols.includes('acme-tls/1') && servername !== undefined && acme()?.hasAlpnChallenge(servername))
          return 'acme-tls/1';
        if (config.http2 && protocols.includes('h2')) return 'h2';
        return protocols.includes('http/1.1') ? 'http/1.1' : undefined; // undefined: no_application_protocol alert
      },
      ...sessionOptions(listener),
      unknownProtocolTimeout: 10_000,
      // A client that never finishes its handshake holds a connection as a silent HTTP client does.
      handshakeTimeout: listener.headerTimeout > 0 ? listener.headerTimeout : 120_000,
    },
    (req, res) => handleStream(host, key, req, res),
  );
  store?.attach(server);
  // A tls-alpn-01 validation connection negotiates acme-tls/1 and closes after the handshake.
  server.on('unknownProtocol', (socket: Socket) => socket.destroy());
  applyHttp1Limits(server, listener);
  // The HTTP/1.1 side reads this like http.Server's option (createSecureServer does not pass it on).
  (server as unknown as { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback =
    upgradeCallback(host, key);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(host, key, req, socket, head),
  );
  server.on('checkContinue', (req, res) =>
    handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  guardConnections(host, listener, server, 'secureConnection', (socket) => (socket as TLSSocket).alpnProtocol === 'h2');
  server.on('session', (session: Http2Session) => {
    onSession(host, listener, sessions, session);
    limitSession(session, limits);
  });
  // HTTP/1.1 over TLS: Node closes a CONNECT unanswered and answers parse errors with a bare 400; both are answered
  // as on the plain listener. An HTTP/2 CONNECT comes here too (request, response): refuseHead answers it.
  server.on('connect', (req: IncomingMessage, second: Socket | ServerResponse, head?: Buffer) =>
    head === undefined
      ? handleRequest(host, key, req, second as ServerResponse)
      : handleUpgrade(host, key, req, second as Socket, head),
  );
  server.on('clientError', clientErrorHandler(host, listener));
  // Read by the HTTP/1.1 side as on http.Server (createHttpServer sets the same).
  Object.assign(server, { maxHeaderSize: listener.maxHeaderSize + 1, maxHeadersCount: listener.maxHeaderCount + 1 });
  // A failed handshake (wrong protocol, no shared cipher, a client certificate refused) just closes its socket.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.on('sessionError', () => undefined);
  return {
    server,
    useStore(next) {
      current = next;
      next?.attach(server);
      server.setSecureContext(defaults());
    },
    acmeChanged() {
      if (current === null) server.setSecureContext(defaults());
    },
    closeSessions() {
      for (const s of sessions) s.close();
    },
    update(next) {
      updateSessionLimits(limits, next);
      applyHttp1Limits(server, next);
    },
  };
}

/**
 * HTTP/1.1 over TLS runs Node's HTTP/1 connection handling with http2's own defaults (60 s for headers, 300 s for
 * the request, checked every 30 s): the listener's limits apply there as on a plain listener.
 */
function applyHttp1Limits(server: Http2SecureServer, listener: CompiledListener): void {
  Object.assign(server, {
    headersTimeout: listener.headerTimeout,
    requestTimeout: listener.requestTimeout,
    keepAliveTimeout: listener.keepAliveTimeout,
    connectionsCheckingInterval: 1000,
  });
}

/**
 * An HTTP/2 request handled as HTTP/1.1 is; once its response is complete, a request body still unread (a 413,
 * a 401, an upstream that answered early) is refused with RST_STREAM(NO_ERROR) (RFC 9113 §8.1), so the client
 * stops uploading instead of holding the stream open against a closed flow-control window.
 */
function handleStream(
  host: ListenerHost,
  key: string,
  req: Http2ServerRequest | IncomingMessage,
  res: Http2ServerResponse | ServerResponse,
): void {
  // After 'wantTrailers' (the compat layer always asks, and answers before this listener): the reset then follows
  // the trailers (gRPC's status) instead of overtaking them.
  if ('stream' in res) res.stream.once('wantTrailers', closeUnreadStream);
  handleH2Request(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse);
}

function closeUnreadStream(this: ServerHttp2Stream): void {
  // A turn later: the frame that ends the response (trailers, or an empty DATA with END_STREAM) is serialised in
  // this one, and a RST_STREAM submitted now would overtake it.
  setImmediate(resetUnread, this);
}

function resetUnread(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.readableEnded) stream.close(http2Constants.NGHTTP2_NO_ERROR);
}

/** HTTP/2 with prior knowledge on a plain listener (`h2c: true`): the same request handling, no TLS. */
export function createH2cServer(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
): { server: Http2Server; closeSessions(): void; update(listener: CompiledListener): void } {
  const sessions = new Set<Http2Session>();
  const limits = sessionLimitsOf(listener);
  const server = createH2Server(sessionOptions(listener), (req, res) => handleStream(host, key, req, res));
  server.on('session', (session: Http2Session) => {
    onSession(host, listener, sessions, session);
    limitSession(session, limits);
  });
  // Without a listener Node answers a CONNECT with a bare 405; refuseHead answers it with a problem.
  server.on('connect', (req, res) =>
    handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  server.on('sessionError', () => undefined);
  return {
    server,
    closeSessions: () => sessions.forEach((s) => s.close()),
    update: (next) => updateSessionLimits(limits, next),
  };
}
