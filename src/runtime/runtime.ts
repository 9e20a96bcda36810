// The running gateway: the current snapshot, the listeners, reload (build beside, swap, retire) and drain.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import { AccessLog } from '../observability/access-log.ts';
import type { RequestContext } from '../request-context.ts';
import { TargetRegistry } from '../upstream/pool.ts';
import { createHttpServer, updateHttpServer, type ListenerHost } from './http-listener.ts';
import { Snapshot } from './snapshot.ts';

export interface ListenerAddress {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

interface OpenListener {
  readonly key: string;
  readonly server: Server;
}

export class Runtime implements ListenerHost {
  current!: Snapshot;
  draining = false;
  readonly configFile: string | undefined;
  private readonly log: Logger;
  private readonly registry = new TargetRegistry();
  private readonly live = new Set<Snapshot>();
  private readonly servers = new Map<string, OpenListener>();
  private readonly tunnels = new Set<() => void>();
  private accessLog: AccessLog | null = null;
  private version = 0;
  private stopping: Promise<void> | null = null;

  private constructor(log: Logger, configFile: string | undefined) {
    this.log = log;
    this.configFile = configFile;
  }

  static async start(config: Config, log: Logger, configFile?: string): Promise<Runtime> {
    const runtime = new Runtime(log, configFile);
    await runtime.apply(config);
    return runtime;
  }

  logAccess(ctx: RequestContext): void {
    this.accessLog?.write(ctx);
  }

  trackTunnel(close: () => void): () => void {
    this.tunnels.add(close);
    return () => this.tunnels.delete(close);
  }

  /** Builds a snapshot for `config` beside the current one, opens new listeners, then swaps. Throws and keeps the old one on failure. */
  async apply(config: Config): Promise<void> {
    if (this.draining) throw new TurnpikeError('TP_SHUTTING_DOWN');
    const next = new Snapshot(config, ++this.version, this.configFile, this.registry, (m) => this.log.warn(m));
    const opened: OpenListener[] = [];
    try {
      for (const [key, listener] of next.listeners) {
        if (this.servers.has(key)) continue;
        const server = createHttpServer(this, key, listener);
        await listen(server, listener.config.address, listener.config.port, listener.config.name);
        opened.push({ key, server });
      }
    } catch (err) {
      for (const o of opened) o.server.close();
      await this.releaseUnused();
      throw err;
    }
    const previous = this.current as Snapshot | undefined;
    for (const o of opened) this.servers.set(o.key, o);
    for (const [key, open] of this.servers) {
      const listener = next.listeners.get(key);
      if (listener) updateHttpServer(open.server, listener);
    }
    if (this.accessLog === null || this.accessLog.output !== (config.accessLog.enabled ? config.accessLog.output : 'off')) {
      const old = this.accessLog;
      this.accessLog = new AccessLog(config.accessLog);
      void old?.close();
    }
    this.current = next;
    this.live.add(next);
    // Listeners the new config dropped stop accepting; their open requests finish.
    for (const [key, open] of this.servers) {
      if (next.listeners.has(key)) continue;
      this.servers.delete(key);
      open.server.close();
      open.server.closeIdleConnections();
    }
    if (previous) this.retire(previous);
    for (const o of opened) {
      const address = o.server.address() as AddressInfo;
      this.log.info({ listener: next.listeners.get(o.key)!.config.name, address: address.address, port: address.port }, 'listening');
    }
  }

  /** Once every request that started on `old` has finished, its pools that the new config dropped are closed. */
  private retire(old: Snapshot): void {
    old.retired = true;
    const done = () => {
      old.onDrained = null;
      this.live.delete(old);
      void this.releaseUnused();
    };
    if (old.inFlight === 0) done();
    else old.onDrained = done;
  }

  private async releaseUnused(): Promise<void> {
    const pools = [];
    for (const s of this.live) pools.push(...s.upstreams.values());
    await this.registry.release(pools);
  }

  addresses(): ListenerAddress[] {
    const out: ListenerAddress[] = [];
    for (const [key, open] of this.servers) {
      const listener = this.current.listeners.get(key);
      const address = open.server.address() as AddressInfo | null;
      if (listener && address) out.push({ name: listener.config.name, address: address.address, port: address.port });
    }
    return out;
  }

  get inFlight(): number {
    let n = 0;
    for (const s of this.live) n += s.inFlight;
    return n;
  }

  /** Stops accepting, lets in-flight requests finish (up to the drain timeout), then closes everything. */
  stop(drainTimeout = this.current?.config.shutdown.drainTimeout ?? 30_000): Promise<void> {
    this.stopping ??= this.drainAndClose(drainTimeout);
    return this.stopping;
  }

  private async drainAndClose(drainTimeout: number): Promise<void> {
    this.draining = true;
    const servers = [...this.servers.values()];
    const closed = servers.map((o) => new Promise<void>((resolve) => o.server.close(() => resolve())));
    const deadline = Date.now() + drainTimeout;
    while ((this.inFlight > 0 || this.tunnels.size > 0) && Date.now() < deadline) {
      for (const o of servers) o.server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const close of [...this.tunnels]) close();
    for (const o of servers) o.server.closeAllConnections();
    await Promise.all(closed);
    this.servers.clear();
    await this.registry.closeAll(this.inFlight > 0);
    await this.accessLog?.close();
    this.accessLog = null;
  }
}

function listen(server: Server, address: string, port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new TurnpikeError('TP_LISTEN_FAILED', `listener "${name}" cannot listen on ${address}:${port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
