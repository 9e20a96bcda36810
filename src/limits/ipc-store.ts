// Instance-wide limit counters for workers: each call goes to the primary, which owns one memory store for the
// whole instance, so `requests: 100, per: 1m` means 100 for the instance with 1 or N workers.
import type { ConcurrencyStore, LimitSpec, RateDecision, RateStore } from './shared-store.ts';

export type LimitRequest =
  | { readonly type: 'limit-rate'; readonly id: number; readonly key: string; readonly limits: readonly LimitSpec[] }
  | { readonly type: 'limit-acquire'; readonly id: number; readonly key: string; readonly max: number; readonly queue: number; readonly timeout: number }
  | { readonly type: 'limit-release'; readonly key: string };

export type LimitReply =
  | { readonly type: 'limit-rate-result'; readonly id: number; readonly decision: RateDecision }
  | { readonly type: 'limit-acquire-result'; readonly id: number; readonly ok: boolean };

/** The worker side: sends requests to the primary and resolves them from its replies. */
export class IpcLimitStore implements RateStore, ConcurrencyStore {
  private nextId = 1;
  private readonly pending = new Map<number, (reply: LimitReply) => void>();
  private readonly send: (m: LimitRequest) => void;

  constructor(send: (m: LimitRequest) => void) {
    this.send = send;
  }

  /** Feed every message from the primary here; returns true when it was a limit reply. */
  receive(m: { type?: string; id?: number }): boolean {
    if (m.type !== 'limit-rate-result' && m.type !== 'limit-acquire-result') return false;
    const resolve = this.pending.get(m.id!);
    this.pending.delete(m.id!);
    resolve?.(m as LimitReply);
    return true;
  }

  consume(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => resolve((r as Extract<LimitReply, { type: 'limit-rate-result' }>).decision));
      this.send({ type: 'limit-rate', id, key, limits });
    });
  }

  acquire(key: string, max: number, queue: number, queueTimeoutMs: number): Promise<boolean> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => resolve((r as Extract<LimitReply, { type: 'limit-acquire-result' }>).ok));
      this.send({ type: 'limit-acquire', id, key, max, queue, timeout: queueTimeoutMs });
    });
  }

  release(key: string): void {
    this.send({ type: 'limit-release', key });
  }
}

/** The primary side: answers a worker's request from the instance's store. */
export async function answerLimitRequest(
  store: RateStore & ConcurrencyStore,
  m: LimitRequest,
  reply: (r: LimitReply) => void,
  held: Map<string, number>,
): Promise<void> {
  switch (m.type) {
    case 'limit-rate':
      reply({ type: 'limit-rate-result', id: m.id, decision: await store.consume(m.key, m.limits) });
      return;
    case 'limit-acquire': {
      const ok = await store.acquire(m.key, m.max, m.queue, m.timeout);
      if (ok) held.set(m.key, (held.get(m.key) ?? 0) + 1);
      reply({ type: 'limit-acquire-result', id: m.id, ok });
      return;
    }
    case 'limit-release': {
      const n = held.get(m.key) ?? 0;
      if (n <= 1) held.delete(m.key);
      else held.set(m.key, n - 1);
      store.release(m.key);
      return;
    }
  }
}
