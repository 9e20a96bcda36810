// TCP and UDP listeners: bytes or datagrams to an upstream of tcp:// / udp:// targets, or (TCP) to the upstream
// the TLS ClientHello's server name selects, without terminating TLS. Pools are looked up in the current
// snapshot for each new connection, so a reload applies to new connections and leaves open ones alone.
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TcpListenerConfig, UdpListenerConfig } from '../config/listener-schema.ts';
import { TurnpikeError } from '../errors.ts';
import { compileServerNames, readClientHello } from '../l4/client-hello.ts';
import { TcpProxy, type L4Picker, type TcpSessionLog } from '../l4/tcp-proxy.ts';
import { UdpProxy } from '../l4/udp-proxy.ts';
import { encodeProxyHeader } from '../l4/proxy-protocol.ts';
import { CHANNELS, type Gateway, type L4SessionEvent } from '../observability/events.ts';
import { normalizeAddress, ProxyTrust } from '../proxy/client-ip.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import type { L4Pool } from '../upstream/l4-pool.ts';
import { ListenSockets } from './listen-sockets.ts';
import type { OpenListener } from './open-listener.ts';
import { openError } from './open-listener.ts';
import { proxiedClient, proxyProtocolGate } from './proxy-protocol-gate.ts';

export interface L4Host {
  /** The gateway whose events this host's sessions publish. */
  readonly gateway: Gateway;
  pool(name: string): L4Pool | undefined;
  /** TCP sessions open on every L4 listener (drain waits for them). */
  active(): number;
  readonly proxies: Set<TcpProxy>;
  log(fields: object, message: string): void;
}

export function createL4Host(
  gateway: Gateway,
  current: () => { readonly l4Pools: ReadonlyMap<string, L4Pool> },
  log: (fields: object, message: string) => void,
): L4Host {
  const proxies = new Set<TcpProxy>();
  return {
    gateway,
    pool: (name) => current().l4Pools.get(name),
    active: () => {
      let n = 0;
      for (const p of proxies) n += p.size;
      return n;
    },
    proxies,
    log,
  };
}

/** A picker that resolves the pool when it is asked, so a reload's pool serves the next connection. */
function pickerFor(host: L4Host, upstream: string): L4Picker {
  return {
    pick: (ip, avoid) => host.pool(upstream)?.pick(ip, avoid),
    observe: (t, ms, failed) => host.pool(upstream)?.observe(t, ms, failed),
  };
}

export async function openL4Listener(
  key: string,
  config: TcpListenerConfig | UdpListenerConfig,
  host: L4Host,
  configDir: string,
): Promise<OpenListener> {
  try {
    return config.protocol === 'tcp' ? await openTcp(key, config, host, configDir) : await openUdp(key, config, host);
  } catch (err) {
    if (err instanceof TurnpikeError) throw err;
    throw openError(config, err);
  }
}

async function openTcp(key: string, config: TcpListenerConfig, host: L4Host, configDir: string): Promise<OpenListener> {
  // TLS termination: connections go through a TLS server first; the proxy then splices the clear bytes.
  const store =
    config.tls !== undefined
      ? new CertificateStore(config.tls, configDir, {
          onError: (err) => host.log({ listener: config.name, error: err.message }, 'TLS certificate change refused'),
        }).watch()
      : null;
  const proxy = new TcpProxy();
  host.proxies.add(proxy);
  const options = { connectTimeout: config.connectTimeout, idleTimeout: config.idleTimeout };
  const fixed = config.upstream !== undefined ? config.upstream : null;
  const byName = config.sni
    ? compileServerNames(config.sni.map((e) => ({ serverName: e.serverName, value: e.upstream })))
    : null;
  const pickers = new Map<string, L4Picker>();
  const pickerOf = (upstream: string) =>
    pickers.get(upstream) ?? pickers.set(upstream, pickerFor(host, upstream)).get(upstream)!;
  /** Splices `socket` to `upstream`, first sending what must precede the client's bytes (PROXY header, hello). */
  const forward = (socket: Socket, upstream: string, replay?: Buffer) => {
    const version = host.pool(upstream)?.proxyProtocol;
    let initialData = replay;
    if (version !== undefined) {
      const raw = rawSocketOf(socket);
      const client = proxiedClient(socket) ?? {
        address: normalizeAddress(raw.remoteAddress),
        port: raw.remotePort ?? 0,
      };
      const header = encodeProxyHeader(version, {
        source: client,
        destination: { address: normalizeAddress(raw.localAddress), port: raw.localPort ?? 0 },
      });
      initialData = replay === undefined ? header : Buffer.concat([header, replay]);
    }
    const clientIp = proxiedClient(socket)?.address ?? normalizeAddress(rawSocketOf(socket).remoteAddress);
    opened(host, config.name, 'tcp', clientIp);
    const onLog = (log: TcpSessionLog) =>
      closed(
        host,
        config.name,
        'tcp',
        clientIp,
        upstream,
        log.target,
        log.bytesIn,
        log.bytesOut,
        log.durationMs,
        log.errorCode,
      );
    proxy.handle(
      socket,
      pickerOf(upstream),
      initialData === undefined ? { ...options, onLog } : { ...options, initialData, onLog },
    );
  };
  const sink = new EventEmitter();
  const terminator =
    store === null
      ? null
      : createTlsServer({ ...store.secureOptions(), allowHalfOpen: true }, (clear) => {
          clear.on('error', () => clear.destroy());
          forward(clear, fixed!);
        });
  if (terminator !== null) {
    store!.attach(terminator);
    terminator.on('tlsClientError', (_err, socket) => socket.destroy());
  }
  sink.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    if (terminator !== null) {
      // Not half-open until the handshake is done (TcpProxy makes the TLS socket half-open): a FIN before it
      // would otherwise never be acted on, and the socket would wait in CLOSE_WAIT for the handshake timeout.
      socket.allowHalfOpen = false;
      return void terminator.emit('connection', socket);
    }
    if (fixed !== null) return forward(socket, fixed);
    // TLS passthrough: read the ClientHello (without answering it), pick by its server name, replay it.
    readClientHello(socket).then(
      (hello) => {
        const upstream = byName!(hello.serverName);
        if (upstream === undefined) {
          host.log(
            {
              listener: config.name,
              serverName: hello.serverName ?? null,
              client: normalizeAddress(socket.remoteAddress),
            },
            'tls passthrough: no sni entry for this server name; closed',
          );
          socket.destroy();
          return;
        }
        forward(socket, upstream, hello.buffered);
      },
      () => socket.destroy(),
    );
  });
  const gate = config.proxyProtocol
    ? proxyProtocolGate(new ProxyTrust(config.trustedProxies), (peer, reason) =>
        host.log({ listener: config.name, peer, reason }, 'PROXY header missing or invalid; connection refused'),
      )
    : undefined;
  const sockets = await ListenSockets.open(sink as never, config.address, config.port, config.acceptSockets, gate);
  return {
    key,
    name: config.name,
    address: sockets.address,
    update: () => undefined,
    close: async () => {
      await sockets.close();
      store?.close();
    },
    connections: () => 0, // sessions are counted by the L4 host
    closeIdle: () => undefined,
    closeAll: () => {
      proxy.closeAll();
      host.proxies.delete(proxy);
    },
  };
}

async function openUdp(key: string, config: UdpListenerConfig, host: L4Host): Promise<OpenListener> {
  const socket = createSocket({ type: isIPv6(config.address) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(config.port, config.address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // Errors on the listening socket (an ICMP error, a send that failed) must not crash the process.
  socket.on('error', (err) => host.log({ listener: config.name, error: err.message }, 'udp listener error'));
  const proxy = new UdpProxy(socket, pickerFor(host, config.upstream), {
    idleTimeout: config.idleTimeout,
    maxSessions: config.maxClients,
    onOpen: (clientIp) => opened(host, config.name, 'udp', normalizeAddress(clientIp)),
    onLog: (log) =>
      closed(
        host,
        config.name,
        'udp',
        normalizeAddress(log.clientAddress),
        config.upstream,
        log.target,
        log.bytesIn,
        log.bytesOut,
        log.durationMs,
        log.end === 'upstream-error' ? 'TP_UPSTREAM_UNAVAILABLE' : null,
      ),
  });
  const address = socket.address();
  return {
    key,
    name: config.name,
    address: { address: address.address, port: address.port, family: address.family },
    update: () => undefined,
    close: async () => void proxy.close(),
    connections: () => 0,
    closeIdle: () => undefined,
    closeAll: () => undefined,
  };
}

function opened(host: L4Host, listener: string, protocol: 'tcp' | 'udp', clientIp: string): void {
  if (CHANNELS.l4Open.hasSubscribers) CHANNELS.l4Open.publish({ gateway: host.gateway, listener, protocol, clientIp });
}

function closed(
  host: L4Host,
  listener: string,
  protocol: 'tcp' | 'udp',
  clientIp: string,
  upstream: string,
  target: string | null,
  bytesIn: number,
  bytesOut: number,
  durationMs: number,
  error: string | null,
): void {
  if (!CHANNELS.l4Close.hasSubscribers) return;
  CHANNELS.l4Close.publish({
    gateway: host.gateway,
    listener,
    protocol,
    clientIp,
    upstream,
    target,
    bytesIn,
    bytesOut,
    durationMs,
    error,
  } satisfies L4SessionEvent);
}

/** The TCP socket under a TLS socket (addresses live there). */
function rawSocketOf(socket: Socket): Socket {
  return (socket as Socket & { _parent?: Socket | null })._parent ?? socket;
}
