// The IPC vocabulary between the primary and its workers.
import type { PurgeReply, PurgeRequest } from '../cache/purge-fanout.ts';
import type { LimitReply, LimitRequest } from '../limits/ipc-store.ts';
import type { MetricsReport } from '../observability/metrics-workers.ts';
import type { ListenerAddress } from './runtime.ts';

export type PrimaryMessage =
  | { readonly type: 'reload'; readonly id: number }
  /** SIGUSR1 reached the primary: open the log files again (logrotate moved them). */
  | { readonly type: 'reopen-logs' }
  /** An active health check's verdict (probes run once per instance, in the primary). */
  | { readonly type: 'health'; readonly target: string; readonly healthy: boolean }
  | LimitReply
  /** A purge relayed from another worker, or the summed count of one this worker asked for. */
  | PurgeRequest
  | PurgeReply;

export type WorkerMessage =
  | { readonly type: 'ready'; readonly ports: ListenerAddress[] }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'reloaded'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | LimitRequest
  | PurgeRequest
  | PurgeReply
  /** The worker's metrics, about once a second (and at once after a breaker, health or reload event). */
  | MetricsReport;
