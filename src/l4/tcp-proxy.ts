// Layer-4 TCP proxying: one client connection spliced to one target connection, bytes untouched.
// It knows targets only through the small L4Target / L4Picker seam below (the runtime adapts its upstream
// pools to it), so it carries no HTTP machinery and is tested with plain objects over real sockets.
import { connect, type Socket } from 'node:net';
import type { ErrorCode } from '../errors.ts';

/** What the L4 proxies need of a target. `active` counts open connections (TCP) or mappings (UDP). */
export interface L4Target {
  readonly key: string;
  /** A host name or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  active: number;
}

/** Chooses targets. `avoid`: one that just failed, not to be reused when another exists. */
export interface L4Picker {
  pick(clientIp: string, avoid?: L4Target): L4Target | undefined;
  /** Outcome of one connect attempt (latency in ms), for passive health and latency-aware balancers. */
  observe?(target: L4Target, latencyMs: number, failed: boolean): void;
}

/** Why a session ended. */
export type TcpEnd =
  | 'closed'
  | 'idle-timeout'
  | 'client-error'
  | 'upstream-error'
  | 'connect-failed'
  | 'no-target'
  | 'client-gone'
  | 'shutdown';

/** One line of the L4 access log, given to `onLog` when the session is over. */
export interface TcpSessionLog {
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Key of the target the bytes went to (of the last one tried when none connected); null when none was picked. */
  readonly target: string | null;
  readonly attempts: number;
  /** Client → target bytes (including `initialData`); target → client bytes. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly connectMs: number | null;
  readonly durationMs: number;
  readonly end: TcpEnd;
  readonly errorCode: ErrorCode | null;
}

export interface TcpProxyOptions {
  /** Budget for one connect attempt, ms. */
  readonly connectTimeout: number;
  /** Both sides are closed after this long (ms) without a byte either way. */
  readonly idleTimeout: number;
  /** Connect failures retried on another target (default 1). */
  readonly retries?: number;
  /** Bytes already read from the client (a peeked TLS ClientHello): written to the target first. */
  readonly initialData?: Buffer;
  readonly onLog?: (log: TcpSessionLog) => void;
}

/**
 * Tracks the live sessions of one listener (for draining and shutdown). The listener's sockets must be
 * created with `allowHalfOpen: true` (handle() sets it on the socket too, so a client's FIN only ends the
 * target's write side).
 */
export class TcpProxy {
  private readonly sessions = new Set<Session>();
  private idleWaiters: (() => void)[] = [];

  /** Open sessions (connecting or spliced). */
  get size(): number {
    return this.sessions.size;
  }

  handle(client: Socket, picker: L4Picker, options: TcpProxyOptions): void {
    const session = new Session(client, picker, options, (s) => {
      this.sessions.delete(s);
      if (this.sessions.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
    this.sessions.add(session);
    session.start();
  }

  /** Resolves once no session is open (graceful drain; pair it with a deadline and closeAll). */
  whenIdle(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Tears every open session down. */
  closeAll(): void {
    for (const s of [...this.sessions]) s.abort('shutdown');
  }
}

class Session {
  private readonly client: Socket;
  private readonly picker: L4Picker;
  private readonly options: TcpProxyOptions;
  private readonly onDone: (s: Session) => void;
  private readonly clientAddress: string;
  private readonly clientPort: number;
  private readonly started = performance.now();
  private readonly tried = new Set<L4Target>();
  private target: L4Target | null = null;
  private upstream: Socket | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private connected = false;
  private connectMs: number | null = null;
  private attempts = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private open = 2; // sockets not yet closed, once spliced
  private done = false;
  private lastError: ErrorCode | null = null;

  constructor(client: Socket, picker: L4Picker, options: TcpProxyOptions, onDone: (s: Session) => void) {
    this.client = client;
    this.picker = picker;
    this.options = options;
    this.onDone = onDone;
    this.clientAddress = client.remoteAddress ?? '';
    this.clientPort = client.remotePort ?? 0;
  }

  start(): void {
    const client = this.client;
    client.allowHalfOpen = true;
    client.pause(); // nothing is read until the target is there (pipe() resumes it)
    client.on('error', this.onClientError);
    client.once('close', this.onClientClose);
    if (client.destroyed) return this.abort('client-gone');
    this.attempt(undefined);
  }

  private readonly onClientError = (): void => this.abort(this.connected ? 'client-error' : 'client-gone');
  private readonly onClientClose = (): void => {
    if (!this.connected) return this.abort('client-gone');
    // A client that closed without having sent its end was reset or destroyed: cut the target too. One that
    // ended cleanly has already ended the target's write side through pipe(), which flushes before it half-closes.
    if (!this.client.readableEnded) this.upstream?.destroy();
    this.closedOne();
  };

  private attempt(avoid: L4Target | undefined): void {
    const target = this.picker.pick(this.clientAddress, avoid);
    if (target === undefined || this.tried.has(target)) {
      return this.finish(
        this.target === null ? 'no-target' : 'connect-failed',
        this.target === null ? 'TP_NO_HEALTHY_TARGET' : this.lastError,
      );
    }
    this.tried.add(target);
    this.target = target;
    this.attempts++;
    target.active++;
    const began = performance.now();
    let upstream: Socket;
    try {
      upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    } catch {
      // A bad port or host throws at once: count it as a refused connect.
      target.active--;
      this.picker.observe?.(target, 0, true);
      this.lastError = 'TP_UPSTREAM_UNAVAILABLE';
      if (this.attempts <= (this.options.retries ?? 1)) return this.attempt(target);
      return this.finish('connect-failed', this.lastError);
    }
    this.upstream = upstream;
    const failed = (err: Error & { code?: string }) => {
      if (this.upstream !== upstream) return;
      this.clearConnectTimer();
      upstream.destroy();
      this.upstream = null;
      target.active--;
      this.picker.observe?.(target, performance.now() - began, true);
      this.lastError = err.code === 'ETIMEDOUT' ? 'TP_UPSTREAM_TIMEOUT' : 'TP_UPSTREAM_UNAVAILABLE';
      if (this.done) return;
      if (this.attempts <= (this.options.retries ?? 1)) this.attempt(target);
      else this.finish('connect-failed', this.lastError);
    };
    upstream.once('error', failed);
    this.connectTimer = setTimeout(
      () => failed(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
      this.options.connectTimeout,
    );
    upstream.once('connect', () => {
      this.clearConnectTimer();
      upstream.off('error', failed);
      this.connectMs = performance.now() - began;
      this.picker.observe?.(target, this.connectMs, false);
      this.connected = true;
      this.splice(upstream);
    });
  }

  /** Pipes both ways with backpressure; an end on one side half-closes the other after a flush. */
  private splice(upstream: Socket): void {
    const client = this.client;
    const idle = this.options.idleTimeout;
    // Socket timeouts restart on every read and write, so together they fire only when nothing flows either way.
    client.setTimeout(idle);
    upstream.setTimeout(idle);
    client.on('timeout', this.onIdle);
    upstream.on('timeout', this.onIdle);
    upstream.on('error', () => this.abort('upstream-error', 'TP_UPSTREAM_RESET'));
    upstream.once('close', () => {
      if (!upstream.readableEnded) client.destroy();
      this.closedOne();
    });
    const initial = this.options.initialData;
    if (initial !== undefined && initial.length > 0) {
      this.bytesIn += initial.length;
      upstream.write(initial);
    }
    client.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
    });
    upstream.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    // The client may have closed while we were connecting (its 'close' then ran before `connected`).
    if (client.destroyed) this.abort('client-gone');
  }

  private readonly onIdle = (): void => this.abort('idle-timeout');

  private closedOne(): void {
    if (--this.open === 0) this.finish('closed', null);
  }

  abort(end: TcpEnd, code: ErrorCode | null = null): void {
    if (this.done) return;
    this.client.destroy();
    if (this.upstream !== null && !this.connected) {
      // Still connecting: the attempt is over, its active count goes back.
      this.clearConnectTimer();
      this.upstream.destroy();
      this.upstream = null;
      if (this.target !== null) this.target.active--;
    }
    this.upstream?.destroy();
    this.finish(end, code);
  }

  private finish(end: TcpEnd, code: ErrorCode | null): void {
    if (this.done) return;
    this.done = true;
    this.client.destroy();
    if (this.connected && this.target !== null) this.target.active--;
    this.onDone(this);
    this.options.onLog?.({
      clientAddress: this.clientAddress,
      clientPort: this.clientPort,
      target: this.target?.key ?? null,
      attempts: this.attempts,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      connectMs: this.connectMs,
      durationMs: performance.now() - this.started,
      end,
      errorCode: code,
    });
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }
}
