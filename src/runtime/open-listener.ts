// A bound listener of any protocol, as the runtime manages it across reloads and at shutdown.
import { dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import type { AcmeManager } from '../acme/manager.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import { TlsConfigError } from '../tls/tls-options.ts';
import { createHttpServer, refuseConnection, updateHttpServer, type ListenerHost } from './http-listener.ts';
import { requestLineGate } from './request-line-gate.ts';
import { createH2cServer, createHttpsServer } from './https-listener.ts';
import { guardSocket } from './h2-session.ts';
import { ListenSockets } from './listen-sockets.ts';
import { proxyProtocolGate, proxiedClient } from './proxy-protocol-gate.ts';
import { ConnectionLimits } from './connection-limits.ts';
import { CHANNELS, publishRefusal, type Gateway } from '../observability/events.ts';
import { normalizeAddress } from '../proxy/client-ip.ts';
import { writeRawProblem } from '../pipeline/problem.ts';
import type { CompiledListener } from './snapshot.ts';

export interface OpenListener {
  readonly key: string;
  readonly name: string;
  readonly address: AddressInfo;
  /** Applies a new snapshot's settings (timeouts, certificates) to a listener that stays open. */
  update(listener: CompiledListener, configDir: string): void;
  /** Stops accepting, once what the kernel already accepted is taken. Open connections stay until closeIdle/closeAll. */
  close(): Promise<void>;
  /** Connections accepted and still open (0 where the listener counts its sessions elsewhere: L4). */
  connections(): number;
  /** Ends HTTP/2 sessions (GOAWAY) and, unless `sessionsOnly`, HTTP/1.1 connections between requests. */
  closeIdle(sessionsOnly?: boolean): void;
  closeAll(): void;
}

export function openError(config: ListenerConfig, err: unknown): TurnpikeError {
  if (err instanceof TlsConfigError)
    return new TurnpikeError('TP_TLS_CONFIG', `listener "${config.name}": ${err.message}`, { cause: err });
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new TurnpikeError(
    'TP_LISTEN_FAILED',
    `listener "${config.name}" cannot listen on ${config.address}:${config.port}: ${code}`,
    { cause: err },
  );
}

/** Opens an http or https listener (https: certificates loaded and watched for changes). */
export async function openHttpListener(
  host: ListenerHost,
  key: string,
  listener: CompiledListener,
  configDir: string,
  onTls: TlsEvents,
): Promise<OpenListener> {
  const config = listener.config;
  let store: CertificateStore | null = null;
  const limits = new ConnectionLimits(
    listener.maxConnections,
    listener.maxConnectionsPerClient,
    (_socket, clientIp) =>
      publishRefusal({
        gateway: host.gateway,
        listener: config.name,
        protocol: 'tcp',
        clientIp,
        code: 'TP_CONNECTION_LIMIT',
      }),
    { gateway: host.gateway, listener: config.name, protocol: config.protocol },
  );
  const updateLimits = (next: CompiledListener) => limits.update(next.maxConnections, next.maxConnectionsPerClient);
  try {
    if (config.protocol === 'https') {
      const acme = () => host.acme?.manager(config.name);
      // The listener's served certificates (the file ones and the ACME one) for the stream and metrics.
      const publish = () => publishCertificates(host.gateway, config.name, store, acme());
      store = config.tls === undefined ? null : loadStore(config.tls, configDir, onTls, config.name, publish);
      const https = createHttpsServer(host, key, listener, store, acme);
      const unwatchAcme = host.acme?.watch(config.name, () => {
        https.acmeChanged();
        publish();
      });
      publish();
      const sockets = await ListenSockets.open(
        https.server as unknown as Server,
        config.address,
        config.port,
        config.acceptSockets,
        gateOf(listener, onTls),
        limits,
      );
      let tlsKey = JSON.stringify(config.tls);
      return {
        key,
        name: config.name,
        address: sockets.address,
        update(next, dir) {
          updateLimits(next);
          https.update(next);
          if (next.config.protocol !== 'https') return;
          const nextKey = JSON.stringify(next.config.tls);
          if (nextKey === tlsKey) return;
          const fresh =
            next.config.tls === undefined ? null : loadStore(next.config.tls, dir, onTls, next.config.name, publish);
          https.useStore(fresh);
          store?.close();
          store = fresh;
          tlsKey = nextKey;
          publish();
        },
        async close() {
          await sockets.close();
          store?.close();
          unwatchAcme?.();
          publishCertificates(host.gateway, config.name, null, undefined);
        },
        connections: () => sockets.connections,
        closeIdle: (sessionsOnly = false) => {
          https.closeSessions();
          if (!sessionsOnly) (https.server as unknown as Server).closeIdleConnections(); // its HTTP/1.1 side (allowHTTP1)
        },
        closeAll: () => {
          // Closing the server last: it stops the header timeouts of connections still waiting to send a request.
          https.server.close();
          https.closeSessions();
          sockets.destroyRemaining();
        },
      };
    }
    const server = createHttpServer(host, key, listener);
    const h1 = requestLineGate(
      server,
      () => host.current.listeners.get(key),
      (socket, code, detail) =>
        refuseConnection(host, host.current.listeners.get(key) ?? listener, socket, code, detail),
    );
    // h2c: a connection that opens with the HTTP/2 preface goes to an HTTP/2 server, any other to HTTP/1.1.
    const h2c = config.protocol === 'http' && config.h2c ? createH2cServer(host, key, listener) : null;
    const entry =
      h2c === null
        ? h1
        : splitByPreface(
            h1,
            h2c.server,
            (socket, first) => guardSocket(host, listener, socket, first),
            (socket) => refuseSilent(host, config.name, socket),
            () => server.headersTimeout,
          );
    const sockets = await ListenSockets.open(
      entry,
      config.address,
      config.port,
      config.acceptSockets,
      gateOf(listener, onTls),
      limits,
    );
    return {
      key,
      name: config.name,
      address: sockets.address,
      update: (next) => {
        updateLimits(next);
        updateHttpServer(server, next);
        h2c?.update(next);
      },
      close: () => sockets.close(),
      connections: () => sockets.connections,
      closeIdle: (sessionsOnly = false) => {
        if (!sessionsOnly) server.closeIdleConnections();
        h2c?.closeSessions();
      },
      closeAll: () => {
        // Closing the server last: it stops the header timeouts of connections still waiting to send a request.
        server.close();
        server.closeAllConnections();
        h2c?.closeSessions();
        sockets.destroyRemaining();
      },
    };
  } catch (err) {
    store?.close();
    throw openError(config, err);
  }
}

export interface TlsEvents {
  readonly reloaded: (listener: string, files: string) => void;
  readonly failed: (listener: string, message: string) => void;
}

function loadStore(
  settings: ConstructorParameters<typeof CertificateStore>[0],
  configDir: string,
  events: TlsEvents,
  name: string,
  publish: () => void,
): CertificateStore {
  const store: CertificateStore = new CertificateStore(settings, configDir, {
    onReload: (e) => {
      events.reloaded(name, `certificates ${e.changed.join(', ')}${e.caChanged ? ' and the client CA' : ''}`);
      publish();
    },
    onError: (err) => events.failed(name, err.message),
  });
  return store.watch();
}

/** Tells the stream which certificates a listener serves now (none: it closed), the ACME one first. */
function publishCertificates(
  gateway: Gateway,
  listener: string,
  store: CertificateStore | null,
  acme: AcmeManager | undefined,
): void {
  if (!CHANNELS.certificates.hasSubscribers) return;
  const issued = acme?.certificate();
  const certificates = [
    ...(issued !== undefined ? [{ names: issued.names, validTo: issued.validTo }] : []),
    ...(store?.certificates() ?? []),
  ];
  CHANNELS.certificates.publish({ gateway, listener, certificates });
}

export function configDirOf(configFile: string | undefined): string {
  return configFile ? dirname(configFile) : process.cwd();
}

function gateOf(listener: CompiledListener, events: TlsEvents): ((socket: Socket) => Promise<boolean>) | undefined {
  if (!listener.config.proxyProtocol) return undefined;
  return proxyProtocolGate(listener.trust, (peer, reason) =>
    events.failed(listener.config.name, `PROXY header from ${peer}: ${reason}; connection refused`),
  );
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Hands each connection to `h2` when its first bytes are the HTTP/2 preface, else to `h1`. The bytes read to
 * decide are replayed: node:http reads them from the JS stream; node:http2 reads sockets natively, so an h2
 * connection is given as a Duplex over the socket past the frame guard (src/runtime/h2-frame-guard.ts).
 */
function splitByPreface(
  h1: Server,
  h2: EventEmitter,
  guarded: (socket: Socket, first: Buffer) => Socket,
  onSilent: (socket: Socket) => void,
  headerTimeout: () => number,
): Server {
  const entry = new EventEmitter();
  entry.on('listening', () => h1.emit('listening'));
  entry.on('connection', (socket: Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    // Until its first bytes say which protocol it speaks, a connection is in neither server's header timeout: a
    // client that connects and sends nothing (or part of the preface) is closed at the listener's headerTimeout.
    const onTimeout = () => onSilent(socket);
    const timeout = headerTimeout();
    if (timeout > 0) {
      socket.setTimeout(timeout);
      socket.once('timeout', onTimeout);
    }
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && seen.length < PREFACE.length) return; // wait for the whole preface
      socket.off('data', onData);
      // The servers set their own socket timeouts (keep-alive): this listener must not answer those.
      socket.off('timeout', onTimeout);
      socket.setTimeout(0);
      socket.pause();
      if (!isH2) {
        socket.unshift(seen); // node:http emits these before its native reads (see requestLineGate)
        h1.emit('connection', socket);
        socket.resume();
        return;
      }
      h2.emit('connection', guarded(socket, seen));
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return entry as unknown as Server;
}

/** A connection that sent nothing (or too little to choose a protocol) in time: 408 and closed, as HTTP/1.1's. */
function refuseSilent(host: ListenerHost, listener: string, socket: Socket): void {
  writeRawProblem(socket, 'TP_REQUEST_TIMEOUT');
  socket.destroySoon();
  publishRefusal({
    gateway: host.gateway,
    listener,
    protocol: 'tcp',
    clientIp: proxiedClient(socket)?.address ?? normalizeAddress(socket.remoteAddress ?? ''),
    code: 'TP_REQUEST_TIMEOUT',
  });
}
