// Request/reply over IPC (a worker asking its primary): each call sends a message with a fresh `id` and resolves
// with the reply that carries the same `id`. A call not answered within its timeout rejects with
// TP_STORE_UNAVAILABLE, so a request never hangs on a stopped or overloaded primary (the plugin's onStoreError
// decides); a reply that comes after that belongs to no call and `receive` says so.
import { TurnpikeError } from '../errors.ts';

/** A message type without its `id`, per member of a union (the call assigns the id). */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * How long a worker waits for its primary by default: the default `stores.redis.commandTimeout`, so the memory
 * store over IPC fails as fast as Redis does. Calls whose answer may legitimately wait (a queued concurrency slot,
 * a purge the primary relays) add that wait.
 */
export const IPC_COMMAND_TIMEOUT_MS = 500;

interface Pending<R> {
  readonly resolve: (reply: R) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class IpcCalls<Request extends { readonly id: number }, Reply extends { readonly id: number }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<Reply>>();
  private readonly send: (m: Request) => void;
  /** Who is asked, for the error message ("the primary"). */
  private readonly peer: string;

  /** `send` delivers a message to the peer; feed the peer's replies to `receive`. */
  constructor(send: (m: Request) => void, peer = 'the primary') {
    this.send = send;
    this.peer = peer;
  }

  /**
   * Sends `message` with a new `id` (written into the object: pass a fresh one) and resolves with the reply of
   * that id, or rejects with TP_STORE_UNAVAILABLE after `timeoutMs` (or when `send` throws).
   */
  call(message: WithoutId<Request>, timeoutMs: number): Promise<Reply> {
    const id = this.nextId++;
    (message as unknown as { id: number }).id = id;
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    // One bound function for every call; the timer does not keep a draining process alive.
    const timer = setTimeout(this.expire, timeoutMs, id, timeoutMs).unref();
    this.pending.set(id, { resolve, reject, timer });
    try {
      this.send(message as unknown as Request);
    } catch (err) {
      clearTimeout(timer);
      this.pending.delete(id);
      reject(
        new TurnpikeError('TP_STORE_UNAVAILABLE', `${this.peer} cannot be reached: ${(err as Error).message}`, {
          cause: err,
        }),
      );
    }
    return promise;
  }

  /** Settles the call `reply` answers. False when no call waits for it (it timed out, or was never made). */
  receive(reply: Reply): boolean {
    const entry = this.pending.get(reply.id);
    if (entry === undefined) return false;
    this.pending.delete(reply.id);
    clearTimeout(entry.timer);
    entry.resolve(reply);
    return true;
  }

  /** Calls waiting for their reply. */
  get size(): number {
    return this.pending.size;
  }

  private readonly expire = (id: number, timeoutMs: number): void => {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    entry.reject(new TurnpikeError('TP_STORE_UNAVAILABLE', `${this.peer} did not answer within ${timeoutMs} ms`));
  };
}
