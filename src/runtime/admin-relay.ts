// The primary's side of the admin API with workers: an operation goes to every worker (IpcCalls per worker,
// bounded by a timeout) and their answers come back to be merged; event stream clients get every worker's events
// (workers send them only while a client is connected). Drains are remembered and replayed to a worker that
// starts later (a replacement, a scale-up), so a drained target stays drained in the whole instance.
import type { Worker } from 'node:cluster';
import type { AdminOp } from '../admin/admin-ops.ts';
import type { AdminWorkers } from '../admin/endpoint.ts';
import type { FeedEvent } from '../admin/event-feed.ts';
import { ERRORS, TurnpikeError, type ErrorCode } from '../errors.ts';
import { IpcCalls } from '../stores/ipc-call.ts';
import type { AdminOpReply, AdminOpRequest, PrimaryMessage, WorkerMessage } from './worker-messages.ts';

/** How long an admin call waits for a worker. */
const ADMIN_OP_TIMEOUT_MS = 5000;

export class AdminRelay implements AdminWorkers {
  private readonly workers: () => Iterable<Worker>;
  private readonly calls = new WeakMap<Worker, IpcCalls<AdminOpRequest, AdminOpReply>>();
  private readonly listeners = new Set<(e: FeedEvent) => void>();
  /** Drained targets by `upstream|target`. */
  private readonly drains = new Map<string, AdminOp>();

  constructor(workers: () => Iterable<Worker>) {
    this.workers = workers;
  }

  private callsOf(worker: Worker): IpcCalls<AdminOpRequest, AdminOpReply> {
    let calls = this.calls.get(worker);
    if (calls === undefined) {
      calls = new IpcCalls<AdminOpRequest, AdminOpReply>(
        (m) => worker.send(m satisfies PrimaryMessage),
        `worker ${worker.id}`,
      );
      this.calls.set(worker, calls);
    }
    return calls;
  }

  private async ask(worker: Worker, op: AdminOp, timeoutMs = ADMIN_OP_TIMEOUT_MS): Promise<unknown> {
    const reply = await this.callsOf(worker).call({ type: 'admin-op', op }, timeoutMs);
    if (reply.ok) return reply.value;
    const code = (reply.code in ERRORS ? reply.code : 'TP_INTERNAL') as ErrorCode;
    throw new TurnpikeError(code, reply.message);
  }

  async all(op: AdminOp): Promise<unknown[]> {
    const workers = [...this.workers()].filter((w) => w.isConnected());
    if (workers.length === 0) throw new TurnpikeError('TP_ADMIN_NOT_READY', 'no worker is running');
    const answers = await Promise.all(workers.map((w) => this.ask(w, op)));
    if (op.op === 'drain') {
      const key = `${op.upstream}|${op.target}`;
      if (op.drained) this.drains.set(key, op);
      else this.drains.delete(key);
    }
    return answers;
  }

  async one(op: AdminOp): Promise<unknown> {
    const worker = [...this.workers()].find((w) => w.isConnected());
    if (worker === undefined) throw new TurnpikeError('TP_ADMIN_NOT_READY', 'no worker is running');
    return this.ask(worker, op);
  }

  async some(op: AdminOp, timeoutMs = ADMIN_OP_TIMEOUT_MS): Promise<{ answers: unknown[]; asked: number }> {
    const workers = [...this.workers()].filter((w) => w.isConnected());
    const settled = await Promise.allSettled(workers.map((w) => this.ask(w, op, timeoutMs)));
    const answers = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
    return { answers, asked: workers.length };
  }

  feed(listener: (e: FeedEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.broadcast({ type: 'admin-feed', on: true });
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0)
        this.broadcast({ type: 'admin-feed', on: false });
    };
  }

  private broadcast(m: PrimaryMessage): void {
    for (const w of this.workers()) if (w.isConnected()) w.send(m);
  }

  /** A worker has started: it gets the drains and, when a client is connected, the event feed. */
  started(worker: Worker): void {
    for (const op of this.drains.values()) void this.ask(worker, op).catch(() => undefined);
    if (this.listeners.size > 0) worker.send({ type: 'admin-feed', on: true } satisfies PrimaryMessage);
  }

  /** Feed every worker message here; true when it was the admin API's. */
  receive(worker: Worker, m: WorkerMessage): boolean {
    if (m.type === 'admin-op-done') {
      this.calls.get(worker)?.receive(m);
      return true;
    }
    if (m.type === 'admin-event') {
      for (const l of this.listeners) l(m.event);
      return true;
    }
    return false;
  }
}
