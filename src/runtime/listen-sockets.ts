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
import { normalizeAddress } from '../proxy/client-ip.ts';
import type { ConnectionLimits } from './connection-limits.ts';
import { proxiedClient } from './proxy-protocol-gate.ts';

/** One listening socket and how many connections it has accepted (the drain watches it). */
interface Accepting {
  readonly server: NetServer;
  accepted: number;
}

/** Accepted connections still open, across a listener's sockets (so a stop can end the ones left). */
class OpenCount {
  readonly sockets = new Set<Socket>();
  get value(): number {
    return this.sockets.size;
  }
}

export class ListenSockets {
  readonly address: AddressInfo;
  private readonly sockets: Accepting[];
  private readonly open: OpenCount;

  private constructor(address: AddressInfo, sockets: Accepting[], open: OpenCount) {
    this.address = address;
    this.sockets = sockets;
    this.open = open;
  }

  /** Connections accepted on this listener and not yet closed (whatever the protocol made of them). */
  get connections(): number {
    return this.open.value;
  }

  /**
   * Ends every accepted connection still open, whatever holds it: the last step of a stop, after the drain. A
   * server's own close leaves some behind (a TLS connection that never sent a request, a socket whose TLS layer
   * was torn down), and they would keep the process alive.
   */
  destroyRemaining(): void {
    for (const socket of this.open.sockets) socket.destroy();
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
    limits?: ConnectionLimits,
  ): Promise<ListenSockets> {
    const onConnection =
      gate === undefined
        ? limits === undefined
          ? (socket: Socket) => server.emit('connection', socket)
          : (socket: Socket) => {
              if (limits.admit(socket, normalizeAddress(socket.remoteAddress ?? ''))) server.emit('connection', socket);
            }
        : (socket: Socket) => {
            socket.on('error', () => socket.destroy());
            // The gate leaves the socket without a reader, as accepted: the server starts it (no resume() here,
            // which would flow bytes to nobody past a reader that waits, as the tcp proxy does for its upstream).
            gate(socket).then(
              (ok) => {
                if (!ok) return socket.destroy();
                // Behind PROXY protocol the client is the one the header named.
                const client = proxiedClient(socket)?.address ?? normalizeAddress(socket.remoteAddress ?? '');
                if (limits !== undefined && !limits.admit(socket, client)) return;
                if (socket.readableLength > 0) readThroughJs(socket);
                server.emit('connection', socket);
              },
              () => socket.destroy(),
            );
          };
    const open = new OpenCount();
    const counted = (socket: Socket) => {
      open.sockets.add(socket);
      socket.once('close', () => open.sockets.delete(socket));
      onConnection(socket);
    };
    const many = count > 1 && REUSE_PORT_PLATFORMS.has(process.platform) && !(cluster.isWorker && port === 0);
    // The server's own choice (http.Server: true, HTTP decides when to end; a TLS server: false, or a client's FIN
    // before its handshake is never acted on and the socket sits in CLOSE_WAIT until the handshake timeout).
    const halfOpen = (server as { allowHalfOpen?: boolean }).allowHalfOpen ?? true;
    const first = await listenOne(counted, host, port, many, halfOpen);
    const address = first.server.address() as AddressInfo;
    const sockets = [first];
    try {
      for (let i = 1; many && i < count; i++)
        sockets.push(await listenOne(counted, host, address.port, true, halfOpen));
    } catch (err) {
      for (const s of sockets) s.server.close();
      throw err;
    }
    // http.Server starts its connection tracking (headers/request timeouts, closeIdleConnections) on 'listening'.
    server.emit('listening');
    return new ListenSockets(address, sockets, open);
  }

  /**
   * Stops accepting without dropping what the kernel already accepted: closing a listening socket resets every
   * connection in its accept queue, and their clients may have sent a request already (ECONNRESET, not knowing
   * whether it was served). libuv accepts one connection per socket and loop turn, so a socket that accepted
   * nothing during a turn had an empty queue at that turn's poll: it is closed then, before the next poll. A
   * socket still accepting after `maxTurns` (sustained load) is closed anyway. Connections already accepted stay
   * open and are answered.
   */
  async close(maxTurns = 1000): Promise<void> {
    // -1: the first check only records; called from a poll-phase callback (a signal), the first immediate runs
    // before any further poll, so it could not have seen an accept.
    let waiting = this.sockets.map((s) => ({ s, seen: -1 }));
    for (let turn = 0; waiting.length > 0; turn++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      waiting = waiting.filter((w) => {
        if (w.s.accepted !== w.seen && turn < maxTurns) {
          w.seen = w.s.accepted;
          return true;
        }
        w.s.server.close();
        return false;
      });
    }
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
): Promise<Accepting> {
  return new Promise((resolve, reject) => {
    const socket = createServer({ noDelay: true, allowHalfOpen }, (c) => {
      accepting.accepted++;
      onConnection(c);
    });
    const accepting: Accepting = { server: socket, accepted: 0 };
    socket.once('error', reject);
    socket.listen({ host, port, reusePort, exclusive: reusePort && cluster.isWorker, backlog: 511 }, () => {
      socket.off('error', reject);
      resolve(accepting);
    });
  });
}

/**
 * Bytes put back into a socket's JS stream (socket.unshift) are skipped by servers that read the native handle
 * directly (TLS); marking the handle consumed makes them read through the JS stream instead, for the connection's
 * whole life (node:http's JS read path costs ~2 us a request more: not for connections node:http takes, which emit
 * what was put back before their native reads begin).
 */
export function readThroughJs(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
  if (handle) handle._consumed = true;
}
