// The admin listener of a gateway (or of a multi-worker primary) across reloads: its context (the runtime once
// started, reload, readiness, the audit line) over the endpoint registry, and the AdminServer bound to the
// running config's admin.address:admin.port. A reload that moves it binds the new address beside the old one
// first (a bind failure fails the reload and changes nothing), then retires the old one; one that adds `admin:`
// starts it, one that removes it closes it. The gateway starts it before its own listeners and closes it after.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AdminConfig } from '../config/admin-schema.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { callerId } from './admin-auth.ts';
import { AdminServer } from './admin-server.ts';
import type { AdminContext, AdminWorkers, MetricsSource } from './endpoint.ts';
import { ADMIN_ENDPOINTS } from './endpoints/registry.ts';

export interface AdminHost {
  readonly log: Logger;
  readonly runtime: () => Runtime | null;
  readonly reload: AdminContext['reload'];
  readonly ready: () => boolean;
  /** The metrics in force (a reload may turn them on or off), or null. */
  readonly metrics?: () => MetricsSource | null;
  /** The workers (a multi-worker primary). */
  readonly workers?: AdminWorkers | null;
}

/** A reload's admin change, bound but not yet in force: `commit` once the reload succeeds, else `abort`. */
export interface AdminChange {
  commit(): void;
  abort(): Promise<void>;
}

const sameBinding = (a: AdminConfig | undefined, b: AdminConfig | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.address === b.address && a.port === b.port;

export class AdminListener {
  private readonly context: AdminContext;
  private readonly log: Logger;
  /** The admin config in force (its tokens are checked per request) and the server bound to it. */
  private config: AdminConfig | undefined;
  private bound: AdminServer | null = null;
  /** Servers a reload replaced, until their last request is answered. */
  private readonly retiring = new Set<AdminServer>();

  private constructor(host: AdminHost) {
    this.log = host.log;
    const metrics = host.metrics ?? (() => null);
    this.context = {
      log: host.log,
      get metrics() {
        return metrics();
      },
      runtime: host.runtime,
      workers: host.workers ?? null,
      reload: host.reload,
      ready: host.ready,
      endpoints: ADMIN_ENDPOINTS,
      audit: (req: IncomingMessage, action: string, fields?: object) =>
        host.log.info(
          { audit: { action, caller: callerId(req), address: req.socket.remoteAddress ?? '', ...fields } },
          `admin ${action}`,
        ),
    };
  }

  /** Binds `config`'s admin listener (none when undefined: a reload may add one). Rejects with TP_LISTEN_FAILED. */
  static async start(config: AdminConfig | undefined, host: AdminHost): Promise<AdminListener> {
    const admin = new AdminListener(host);
    if (config !== undefined) admin.bound = await admin.bind(config);
    admin.config = config;
    return admin;
  }

  /** The server bound now, or null without `admin:`. */
  get server(): AdminServer | null {
    return this.bound;
  }

  private bind(config: AdminConfig): Promise<AdminServer> {
    return AdminServer.start(config, ADMIN_ENDPOINTS, this.context, () => this.config?.auth?.tokens);
  }

  /**
   * Binds what `next` asks for beside the running listener when its address or port differ; rejects (with
   * TP_LISTEN_FAILED) and changes nothing when that fails. Nothing changes for clients until `commit`.
   */
  async prepare(next: AdminConfig | undefined): Promise<AdminChange> {
    const moved = !sameBinding(this.config, next);
    const fresh = moved && next !== undefined ? await this.bind(next) : null;
    return {
      commit: () => {
        this.config = next;
        if (!moved) return;
        const old = this.bound;
        this.bound = fresh;
        if (old !== null) this.retire(old);
      },
      abort: async () => {
        await fresh?.close();
      },
    };
  }

  /** Stops accepting on `old` now; its requests in progress finish (never awaited: a POST /api/reload is one). */
  private retire(old: AdminServer): void {
    const where = { listener: 'admin', address: old.address, port: old.port };
    this.retiring.add(old);
    void old.retire().then(() => {
      this.retiring.delete(old);
      this.log.info(where, 'admin listener closed');
    });
  }

  /** Closes the listener and any a reload replaced, cutting their connections (event streams included). */
  async close(): Promise<void> {
    const all = [...this.retiring, ...(this.bound ? [this.bound] : [])];
    this.bound = null;
    this.retiring.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
