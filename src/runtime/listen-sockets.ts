// The listening sockets behind one listener. libuv (1.50+, Node 24) accepts ONE connection per event-loop turn
// and listening socket: when a busy gateway gets a burst of new connections, the last of them waits one full turn
// per connection ahead of it (measured: 256 new connections took 2.9 s to accept while serving load, and wrk
// counted them as timeouts). NGINX has `multi_accept`, HAProxy `tune.maxaccept`; Node has neither, so where the
// platform has SO_REUSEPORT we open several sockets on the same port and the kernel spreads new connections over
// them: each turn then accepts up to `count` connections. Every socket hands its connections to the one
// http.Server, so request handling, connection tracking and timeouts are unchanged.
import cluster from 'node:cluster';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';

export class ListenSockets {
  readonly address: AddressInfo;
  private readonly sockets: NetServer[];

  private constructor(address: AddressInfo, sockets: NetServer[]) {
    this.address = address;
    this.sockets = sockets;
  }

  /**
   * Opens `count` sockets on address:port (port 0 picks one free port for all) and feeds their connections to
   * `server`. A cluster worker opens its own sockets too (`exclusive`: the kernel, not the primary, spreads
   * connections over the workers, as NGINX's `reuseport` does); only for port 0, where each worker would get a
   * port of its own, does a worker share one socket through the primary.
   */
  static async open(
    server: HttpServer,
    host: string,
    port: number,
    count: number,
    gate?: (socket: Socket) => Promise<boolean>,
  ): Promise<ListenSockets> {
    const onConnection =
      gate === undefined
        ? (socket: Socket) => server.emit('connection', socket)
        : (socket: Socket) => {
            socket.on('error', () => socket.destroy());
            // The gate leaves the socket without a reader, as accepted: the server starts it (no resume() here,
            // which would flow bytes to nobody past a reader that waits, as the tcp proxy does for its upstream).
            gate(socket).then(
              (ok) => {
                if (!ok) return socket.destroy();
                if (socket.readableLength > 0) readThroughJs(socket);
                server.emit('connection', socket);
              },
              () => socket.destroy(),
            );
          };
    const many = count > 1 && REUSE_PORT_PLATFORMS.has(process.platform) && !(cluster.isWorker && port === 0);
    // The server's own choice (http.Server: true, HTTP decides when to end; a TLS server: false, or a client's FIN
    // before its handshake is never acted on and the socket sits in CLOSE_WAIT until the handshake timeout).
    const halfOpen = (server as { allowHalfOpen?: boolean }).allowHalfOpen ?? true;
    const first = await listenOne(onConnection, host, port, many, halfOpen);
    const address = first.address() as AddressInfo;
    const sockets = [first];
    try {
      for (let i = 1; many && i < count; i++)
        sockets.push(await listenOne(onConnection, host, address.port, true, halfOpen));
    } catch (err) {
      for (const s of sockets) s.close();
      throw err;
    }
    // http.Server starts its connection tracking (headers/request timeouts, closeIdleConnections) on 'listening'.
    server.emit('listening');
    return new ListenSockets(address, sockets);
  }

  /** Stops accepting; connections already accepted stay open. */
  close(): void {
    for (const s of this.sockets) s.close();
  }
}

// Where Node implements `reusePort` with the kernel balancing connections across the sockets.
const REUSE_PORT_PLATFORMS = new Set(['linux', 'freebsd', 'dragonfly']);

function listenOne(
  onConnection: (socket: Socket) => void,
  host: string,
  port: number,
  reusePort: boolean,
  allowHalfOpen: boolean,
): Promise<NetServer> {
  return new Promise((resolve, reject) => {
    const socket = createServer({ noDelay: true, allowHalfOpen }, onConnection);
    socket.once('error', reject);
    socket.listen({ host, port, reusePort, exclusive: reusePort && cluster.isWorker, backlog: 511 }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/**
 * Bytes put back into a socket's JS stream (socket.unshift) are skipped by servers that read the native handle
 * directly (node:http, TLS); marking the handle consumed makes them read through the JS stream instead.
 */
export function readThroughJs(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
  if (handle) handle._consumed = true;
}
