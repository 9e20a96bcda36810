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
import type { HttpsListenerConfig } from '../config/listener-schema.ts';
import type { CertificateStore } from '../tls/certificate-store.ts';
import { handleRequest, handleUpgrade, upgradeCallback, type ListenerHost } from './http-listener.ts';
import type { CompiledListener } from './snapshot.ts';

/** Streams a client may reset per second before its session is closed (HTTP/2 rapid reset, CVE-2023-44487). */
const MAX_RESETS_PER_SECOND = 200;

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
      settings: { maxConcurrentStreams: 128, maxHeaderListSize: listener.maxHeaderSize, enablePush: false },
      maxHeaderListPairs: 256,
      // Bounds on abuse nghttp2 can count for us: protocol errors and refused streams per session.
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      unknownProtocolTimeout: 10_000,
    },
    (req, res) => handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  store.attach(server);
  // The HTTP/1.1 side reads this like http.Server's option (createSecureServer does not pass it on).
  (server as unknown as { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback =
    upgradeCallback(host, key);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(host, key, req, socket, head),
  );
  server.on('checkContinue', (req, res) =>
    handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    guardRapidReset(session);
  });
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

/** Closes a session whose client resets streams faster than any real client does. */
function guardRapidReset(session: Http2Session): void {
  let windowStart = performance.now();
  let resets = 0;
  session.on('stream', (stream) => {
    stream.once('close', () => {
      // NGHTTP2_CANCEL (8) from the peer before we answered is what a rapid-reset attack sends.
      if (stream.rstCode !== 8 || stream.headersSent) return;
      const now = performance.now();
      if (now - windowStart > 1000) {
        windowStart = now;
        resets = 0;
      }
      if (++resets > MAX_RESETS_PER_SECOND) session.destroy();
    });
  });
}

/** HTTP/2 with prior knowledge on a plain listener (`h2c: true`): the same request handling, no TLS. */
export function createH2cServer(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
): { server: Http2Server; closeSessions(): void } {
  const sessions = new Set<Http2Session>();
  const server = createH2Server(
    {
      settings: { maxConcurrentStreams: 128, maxHeaderListSize: listener.maxHeaderSize, enablePush: false },
      maxHeaderListPairs: 256,
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    },
    (req, res) => handleRequest(host, key, req as unknown as IncomingMessage, res as unknown as ServerResponse),
  );
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    guardRapidReset(session);
  });
  server.on('sessionError', () => undefined);
  return { server, closeSessions: () => sessions.forEach((s) => s.close()) };
}
