// HTTPS listeners: TLS with SNI-selected certificates, HTTP/2 and HTTP/1.1 offered through ALPN, the same
// request handling as plain HTTP. Certificates come from a CertificateStore the runtime can swap on reload.
import {
  createServer as createH2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { HttpsListenerConfig } from '../config/listener-schema.ts';
import { tunnelsUpgrade } from '../proxy/upgrade-tunnel.ts';
import type { CertificateStore } from '../tls/certificate-store.ts';
import { clientErrorHandler, handleRequest, handleUpgrade, type ListenerHost } from './http-listener.ts';
import type { CompiledListener } from './snapshot.ts';
import { guardConnections, handleH2Request, onSession, sessionOptions } from './h2-session.ts';

export interface HttpsServer {
  readonly server: Http2SecureServer;
  /** Serves new handshakes from another store (a reload changed the listener's certificates). */
  useStore(store: CertificateStore): void;
  /** Asks every HTTP/2 session to finish its streams and close (GOAWAY): graceful drain. */
  closeSessions(): void;
}

export function createHttpsServer(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
  store: CertificateStore,
): HttpsServer {
  const config = listener.config as HttpsListenerConfig;
  let current = store;
  const sessions = new Set<Http2Session>();
  const server = createSecureServer(
    {
      ...store.secureOptions(),
      // The store behind this callback can change on reload; the server keeps calling through it.
      SNICallback: (name, cb) => current.sniCallback(name, cb),
      allowHTTP1: true,
      ALPNProtocols: config.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      ...sessionOptions(listener),
      unknownProtocolTimeout: 10_000,
    },
    (req, res) => handleH2Request(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  store.attach(server);
  // The HTTP/1.1 side reads this like http.Server's option (createSecureServer does not pass it on).
  (server as unknown as { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback =
    tunnelsUpgrade;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(host, key, req, socket, head),
  );
  server.on('checkContinue', (req, res) =>
    handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  guardConnections(host, listener, server, 'secureConnection', (socket) => (socket as TLSSocket).alpnProtocol === 'h2');
  server.on('session', (session: Http2Session) => onSession(host, listener, sessions, session));
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
      next.attach(server);
      server.setSecureContext(next.secureOptions());
    },
    closeSessions() {
      for (const s of sessions) s.close();
    },
  };
}

/** HTTP/2 with prior knowledge on a plain listener (`h2c: true`): the same request handling, no TLS. */
export function createH2cServer(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
): { server: Http2Server; closeSessions(): void } {
  const sessions = new Set<Http2Session>();
  const server = createH2Server(sessionOptions(listener), (req, res) =>
    handleH2Request(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  server.on('session', (session: Http2Session) => onSession(host, listener, sessions, session));
  // Without a listener Node answers a CONNECT with a bare 405; refuseHead answers it with a problem.
  server.on('connect', (req, res) =>
    handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  server.on('sessionError', () => undefined);
  return { server, closeSessions: () => sessions.forEach((s) => s.close()) };
}
