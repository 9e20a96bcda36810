// Layer-4 UDP proxying. Each client (address:port) gets a mapping: a target picked on its first datagram and an
// upstream socket of its own, connected to that target, so the target's replies come back on it and go to
// that client (and datagrams from anyone but the target are dropped by the kernel). Mappings live in one Map
// kept in least-recently-used order: one interval timer expires the idle ones from its front, and when the
// cap is reached the front one (the oldest idle) gives way.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { L4Picker, L4Target } from './tcp-proxy.ts';

export type UdpEnd = 'idle' | 'evicted' | 'upstream-error' | 'closed';

export interface UdpSessionLog {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly target: string;
  /** Client → target; target → client. */
  readonly datagramsIn: number;
  readonly datagramsOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly end: UdpEnd;
}

export interface UdpProxyOptions {
  /** A mapping with no datagram either way for this long (ms) is removed. */
  readonly idleTimeout: number;
  /** Most mappings at once (default 10 000); a new client beyond it replaces the oldest idle one. */
  readonly maxSessions?: number;
  /** Datagrams held per mapping while its upstream socket is being set up (default 64; more are dropped). */
  readonly maxPending?: number;
  /** close() also closes the listener (default true). */
  readonly closeListener?: boolean;
  readonly onLog?: (log: UdpSessionLog) => void;
  /** A client got a mapping (its first datagram). */
  readonly onOpen?: (clientAddress: string) => void;
}

export interface UdpStats {
  readonly sessions: number;
  readonly created: number;
  readonly expired: number;
  readonly evicted: number;
  /** Datagrams dropped: no target, mapping not ready and its queue full, or a send error. */
  readonly dropped: number;
}

interface Mapping {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly target: L4Target;
  readonly started: number;
  socket: Socket | null; // the upstream socket, once created
  ready: boolean; // connected: datagrams go straight out
  pending: Buffer[]; // held until ready
  onSent: (err: Error | null) => void;
  lastSeen: number;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  closed: boolean;
}

export class UdpProxy {
  private readonly listener: Socket;
  private readonly picker: L4Picker;
  private readonly options: UdpProxyOptions;
  private readonly maxSessions: number;
  private readonly sessions = new Map<string, Mapping>();
  private readonly sweeper: NodeJS.Timeout;
  private counts = { created: 0, expired: 0, evicted: 0, dropped: 0 };
  private closed = false;

  constructor(listener: Socket, picker: L4Picker, options: UdpProxyOptions) {
    this.listener = listener;
    this.picker = picker;
    this.options = options;
    this.maxSessions = options.maxSessions ?? 10_000;
    listener.on('message', this.onMessage);
    // Expiry is late by at most one period: a quarter of the idle timeout, within [10 ms, 1 s].
    const period = Math.min(1000, Math.max(10, options.idleTimeout / 4));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
  }

  get stats(): UdpStats {
    return { sessions: this.sessions.size, ...this.counts };
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let m = this.sessions.get(key);
    if (m === undefined) {
      const created = this.open(key, rinfo);
      if (created === undefined) {
        this.counts.dropped++;
        return;
      }
      m = created;
    } else {
      this.touch(m);
    }
    m.datagramsIn++;
    m.bytesIn += msg.length;
    if (m.ready) m.socket!.send(msg, m.onSent);
    else if (m.pending.length < (this.options.maxPending ?? 64)) m.pending.push(msg);
    else this.counts.dropped++;
  };

  private open(key: string, rinfo: RemoteInfo): Mapping | undefined {
    if (this.closed) return undefined;
    const target = this.picker.pick(rinfo.address);
    if (target === undefined) return undefined;
    if (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.values().next().value;
      if (oldest !== undefined) this.end(oldest, 'evicted');
    }
    const m: Mapping = {
      key,
      address: rinfo.address,
      port: rinfo.port,
      target,
      started: performance.now(),
      socket: null,
      ready: false,
      pending: [],
      onSent: (err) => {
        if (err === null) return;
        this.counts.dropped++;
        this.fail(m);
      },
      lastSeen: performance.now(),
      datagramsIn: 0,
      datagramsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      closed: false,
    };
    this.sessions.set(key, m);
    this.counts.created++;
    target.active++;
    this.options.onOpen?.(rinfo.address);
    void this.connect(m);
    return m;
  }

  /** Binds and connects the mapping's upstream socket (resolving a host name once), then flushes what queued. */
  private async connect(m: Mapping): Promise<void> {
    const { host, port } = m.target;
    let address = host.replace(/^\[|\]$/g, '');
    let family = isIP(address);
    if (family === 0) {
      try {
        ({ address, family } = await lookup(address));
      } catch {
        return this.fail(m);
      }
    }
    if (m.closed) return;
    const upstream = createSocket(family === 6 ? 'udp6' : 'udp4');
    m.socket = upstream;
    upstream.on('error', () => this.fail(m));
    upstream.on('message', (msg: Buffer) => {
      if (m.closed) return;
      this.touch(m);
      m.datagramsOut++;
      m.bytesOut += msg.length;
      this.listener.send(msg, m.port, m.address, this.listenerSendDone);
    });
    upstream.connect(port, address, () => {
      if (m.closed) return;
      m.ready = true;
      const queued = m.pending;
      m.pending = [];
      for (const msg of queued) upstream.send(msg, m.onSent);
    });
  }

  /** An upstream error (ICMP port unreachable shows as ECONNREFUSED): the mapping goes; the next datagram re-picks. */
  private fail(m: Mapping): void {
    if (m.closed) return;
    this.picker.observe?.(m.target, 0, true);
    this.end(m, 'upstream-error');
  }

  private readonly listenerSendDone = (err: Error | null): void => {
    if (err !== null) this.counts.dropped++;
  };

  /** Marks activity and moves the mapping to the back of the LRU order. */
  private touch(m: Mapping): void {
    m.lastSeen = performance.now();
    this.sessions.delete(m.key);
    this.sessions.set(m.key, m);
  }

  private sweep(): void {
    const cutoff = performance.now() - this.options.idleTimeout;
    for (const m of this.sessions.values()) {
      if (m.lastSeen > cutoff) break; // LRU order: the rest are more recent
      this.end(m, 'idle');
    }
  }

  private end(m: Mapping, why: UdpEnd): void {
    if (m.closed) return;
    m.closed = true;
    if (this.sessions.get(m.key) === m) this.sessions.delete(m.key);
    if (why === 'idle') this.counts.expired++;
    else if (why === 'evicted') this.counts.evicted++;
    m.target.active--;
    const socket = m.socket;
    m.socket = null;
    m.ready = false;
    m.pending = [];
    if (socket !== null) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
    this.options.onLog?.({
      clientAddress: m.address,
      clientPort: m.port,
      target: m.target.key,
      datagramsIn: m.datagramsIn,
      datagramsOut: m.datagramsOut,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      durationMs: performance.now() - m.started,
      end: why,
    });
  }

  /** Stops forwarding and closes every mapping (and the listener unless `closeListener: false`). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.listener.off('message', this.onMessage);
    for (const m of [...this.sessions.values()]) this.end(m, 'closed');
    if (this.options.closeListener ?? true) {
      await new Promise<void>((resolve) => {
        try {
          this.listener.close(() => resolve());
        } catch {
          resolve(); // already closed
        }
      });
    }
  }
}
