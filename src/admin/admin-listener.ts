// Builds the admin listener of a gateway: its context (the runtime once started, reload, readiness, the audit
// line) over the endpoint registry. The gateway starts it before its own listeners and closes it after them.
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
  /** The tokens in force: the running config's, once there is one. */
  readonly tokens: () => readonly string[] | undefined;
  /** The metrics in force (a reload may turn them on or off), or null. */
  readonly metrics?: () => MetricsSource | null;
  /** The workers (a multi-worker primary). */
  readonly workers?: AdminWorkers | null;
}

export function startAdminListener(config: AdminConfig, host: AdminHost): Promise<AdminServer> {
  const metrics = host.metrics ?? (() => null);
  const context: AdminContext = {
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
  return AdminServer.start(config, ADMIN_ENDPOINTS, context, host.tokens);
}
