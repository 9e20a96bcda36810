// Instance-wide limit counters for workers: each call goes to the primary, which owns one memory store for the
// whole instance, so `requests: 100, per: 1m` means 100 for the instance with 1 or N workers. A primary that does
// not answer in time fails the call (TP_STORE_UNAVAILABLE), and the plugin's onStoreError decides.
import { IPC_COMMAND_TIMEOUT_MS, IpcCalls } from '../stores/ipc-call.ts';
import type { ConcurrencyStore, LimitSpec, RateDecision, RateStore } from './shared-store.ts';

export type LimitRequest =
  | {
      readonly type: 'limit-rate';
      readonly id: number;
      readonly key: string;
      readonly limits: readonly LimitSpec[];
      /** Only read the counters (`turnpike explain`), count nothing. */
      readonly peek?: boolean;
    }
  | {
      readonly type: 'limit-acquire';
      readonly id: number;
      readonly key: string;
      readonly max: number;
      readonly queue: number;
      readonly timeout: number;
    }
  | { readonly type: 'limit-release'; readonly key: string };

export type LimitReply =
  | { readonly type: 'limit-rate-result'; readonly id: number; readonly decision: RateDecision }
  | { readonly type: 'limit-acquire-result'; readonly id: number; readonly key: string; readonly ok: boolean };

type Call = Exclude<LimitRequest, { type: 'limit-release' }>;
type RateResult = Extract<LimitReply, { type: 'limit-rate-result' }>;
type AcquireResult = Extract<LimitReply, { type: 'limit-acquire-result' }>;

const decisionOf = (r: LimitReply): RateDecision => (r as RateResult).decision;
const grantedOf = (r: LimitReply): boolean => (r as AcquireResult).ok;

/** The worker side: sends requests to the primary and resolves them from its replies. */
export class IpcLimitStore implements RateStore, ConcurrencyStore {
  private readonly send: (m: LimitRequest) => void;
  private readonly calls: IpcCalls<Call, LimitReply>;
  private readonly timeoutMs: number;

  /** `timeoutMs`: how long a call waits for the primary (a queued acquire waits its queue timeout on top). */
  constructor(send: (m: LimitRequest) => void, timeoutMs = IPC_COMMAND_TIMEOUT_MS) {
    this.send = send;
    this.calls = new IpcCalls<Call, LimitReply>(send);
    this.timeoutMs = timeoutMs;
  }

  /** Feed every message from the primary here; returns true when it was a limit reply. */
  receive(m: { type?: string }): boolean {
    if (m.type !== 'limit-rate-result' && m.type !== 'limit-acquire-result') return false;
    const reply = m as LimitReply;
    // A slot granted after its call gave up is held by nobody: hand it straight back.
    if (!this.calls.receive(reply) && reply.type === 'limit-acquire-result' && reply.ok) this.release(reply.key);
    return true;
  }

  consume(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> {
    return this.calls.call({ type: 'limit-rate', key, limits }, this.timeoutMs).then(decisionOf);
  }

  peek(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> {
    return this.calls.call({ type: 'limit-rate', key, limits, peek: true }, this.timeoutMs).then(decisionOf);
  }

  acquire(key: string, max: number, queue: number, queueTimeoutMs: number): Promise<boolean> {
    // The primary answers a queued acquire when a slot frees or after queueTimeoutMs.
    const wait = queue > 0 ? queueTimeoutMs + this.timeoutMs : this.timeoutMs;
    return this.calls.call({ type: 'limit-acquire', key, max, queue, timeout: queueTimeoutMs }, wait).then(grantedOf);
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
      reply({
        type: 'limit-rate-result',
        id: m.id,
        decision: await (m.peek === true ? store.peek(m.key, m.limits) : store.consume(m.key, m.limits)),
      });
      return;
    case 'limit-acquire': {
      const ok = await store.acquire(m.key, m.max, m.queue, m.timeout);
      if (ok) held.set(m.key, (held.get(m.key) ?? 0) + 1);
      reply({ type: 'limit-acquire-result', id: m.id, key: m.key, ok });
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
