// Connection counts of one listener in this process: `maxConnections` (Envoy's listener connection limit, HAProxy's
// frontend maxconn) and `maxConnectionsPerClient` (NGINX's limit_conn by address). A connection over either is
// closed as soon as it is accepted, before any byte is read, and published as a refusal; the counts are kept
// across reloads (the listener's sockets are) and the limits updated in place.
import type { Socket } from 'node:net';
import { CHANNELS, type ConnectionEvent, type Gateway } from '../observability/events.ts';

const kClient = Symbol('turnpike.connectionClient');

export class ConnectionLimits {
  private max: number;
  private perClient: number;
  private open = 0;
  /** Open connections by client address, only while a per-client limit is set. */
  private readonly byClient = new Map<string, number>();
  private readonly refused: (socket: Socket, clientIp: string) => void;
  private readonly onClose: (this: Socket) => void;
  /** The two connection events of this listener, made once (published only while someone listens). */
  private readonly opened: ConnectionEvent;
  private readonly closed: ConnectionEvent;

  constructor(
    max: number,
    perClient: number,
    refused: (socket: Socket, clientIp: string) => void,
    source: { readonly gateway: Gateway; readonly listener: string; readonly protocol: string },
  ) {
    this.max = max;
    this.perClient = perClient;
    this.refused = refused;
    this.opened = Object.freeze({ ...source, open: true });
    this.closed = Object.freeze({ ...source, open: false });
    const limits = this;
    this.onClose = function (this: Socket) {
      limits.release(this);
    };
  }

  /** Applies a new snapshot's limits; connections already open stay. */
  update(max: number, perClient: number): void {
    this.max = max;
    this.perClient = perClient;
  }

  /** Counts an accepted connection, or closes it (and publishes the refusal) when it is over a limit. */
  admit(socket: Socket, clientIp: string): boolean {
    if (this.open >= this.max) return this.refuse(socket, clientIp);
    if (this.perClient > 0) {
      const n = this.byClient.get(clientIp) ?? 0;
      if (n >= this.perClient) return this.refuse(socket, clientIp);
      this.byClient.set(clientIp, n + 1);
      (socket as Socket & { [kClient]?: string })[kClient] = clientIp;
    }
    this.open++;
    socket.once('close', this.onClose);
    if (CHANNELS.connection.hasSubscribers) CHANNELS.connection.publish(this.opened);
    return true;
  }

  /** Connections counted now (for tests and metrics). */
  get connections(): number {
    return this.open;
  }

  private release(socket: Socket): void {
    this.open--;
    if (CHANNELS.connection.hasSubscribers) CHANNELS.connection.publish(this.closed);
    const client = (socket as Socket & { [kClient]?: string })[kClient];
    if (client === undefined) return;
    const n = this.byClient.get(client)! - 1;
    if (n === 0) this.byClient.delete(client);
    else this.byClient.set(client, n);
  }

  private refuse(socket: Socket, clientIp: string): false {
    socket.destroy();
    this.refused(socket, clientIp);
    return false;
  }
}
