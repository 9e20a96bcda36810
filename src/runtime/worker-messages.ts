// The IPC vocabulary between the primary and its workers.
import type { AdminOp } from '../admin/admin-ops.ts';
import type { FeedEvent } from '../admin/event-feed.ts';
import type { DiscoveredSet } from '../discovery/instance-sets.ts';
import type { PurgeReply, PurgeRequest } from '../cache/purge-fanout.ts';
import type { LimitReply, LimitRequest } from '../limits/ipc-store.ts';
import type { MetricsReport } from '../observability/metrics-workers.ts';
import type { ListenerAddress } from './runtime.ts';

/** The primary's admin listener asks a worker to run an admin operation on its runtime. */
export type AdminOpRequest = { readonly type: 'admin-op'; readonly id: number; readonly op: AdminOp };
export type AdminOpReply =
  | { readonly type: 'admin-op-done'; readonly id: number; readonly ok: true; readonly value: unknown }
  | {
      readonly type: 'admin-op-done';
      readonly id: number;
      readonly ok: false;
      readonly code: string;
      readonly message: string;
    };

export type PrimaryMessage =
  /** The config file's text as the primary last read and checked it: a worker never reads the file itself, so
   *  one started after a refused reload runs the last good config, not the broken file. */
  | { readonly type: 'config'; readonly text: string }
  | { readonly type: 'reload'; readonly id: number; readonly text: string }
  /** SIGUSR1 reached the primary: open the log files again (logrotate moved them). */
  | { readonly type: 'reopen-logs' }
  /** An active health check's verdict (probes run once per instance, in the primary). */
  | { readonly type: 'health'; readonly target: string; readonly healthy: boolean }
  /** An upstream's discovered targets, whole (discovery runs once per instance, in the primary). */
  | { readonly type: 'discovered'; readonly set: DiscoveredSet }
  | LimitReply
  /** A purge relayed from another worker, or the summed count of one this worker asked for. */
  | PurgeRequest
  | PurgeReply
  | AdminOpRequest
  /** An event stream client is connected to the admin listener (on) or the last one left (off). */
  | { readonly type: 'admin-feed'; readonly on: boolean };

export type WorkerMessage =
  /** Sent once the worker listens for messages (one sent earlier could be lost): the primary answers `config`. */
  | { readonly type: 'config-please' }
  | { readonly type: 'ready'; readonly ports: ListenerAddress[] }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'reloaded'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | LimitRequest
  | PurgeRequest
  | PurgeReply
  /** The worker's metrics, about once a second (and at once after a breaker, health or reload event). */
  | MetricsReport
  | AdminOpReply
  /** One event of this worker's stream, while the primary's admin listener has an event stream client. */
  | { readonly type: 'admin-event'; readonly event: FeedEvent };
