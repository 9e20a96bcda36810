// With workers, each worker holds its own memory cache; a PURGE reaching one worker must empty them all. The
// worker purges its own store and asks the primary, which asks every other worker and sums their counts. A primary
// that does not answer fails the purge (503 TP_STORE_UNAVAILABLE: the other workers may still hold the entry).
import { TurnpikeError } from '../errors.ts';
import { IPC_COMMAND_TIMEOUT_MS, IpcCalls } from '../stores/ipc-call.ts';
import type { CacheStore } from './store.ts';

export type PurgeRequest = {
  readonly type: 'cache-purge';
  readonly id: number;
  readonly route: string;
  readonly key: string;
  readonly prefix: boolean;
};
export type PurgeReply = { readonly type: 'cache-purged'; readonly id: number; readonly count: number };

/** How long the primary waits for the other workers' counts (a busy or dying worker must not hold a purge). */
const FANOUT_TIMEOUT_MS = 2000;
/** How long a worker waits for the primary's summed count: the fan-out's own bound, plus the primary's turn. */
export const PURGE_TIMEOUT_MS = FANOUT_TIMEOUT_MS + IPC_COMMAND_TIMEOUT_MS;

/** A process's memory caches by route, and (in a worker) the way to the others. Redis caches are one for all. */
export class CachePurges {
  // Weak: a store dropped by a reload (route gone, maxSize changed) must not be kept alive by this index.
  private readonly stores = new Map<string, WeakRef<CacheStore>>();
  private readonly send: ((m: PurgeRequest | PurgeReply) => void) | null;
  private readonly calls: IpcCalls<PurgeRequest, PurgeReply> | null;

  /** `send` reaches the primary; null in a single process. */
  constructor(send: ((m: PurgeRequest | PurgeReply) => void) | null) {
    this.send = send;
    this.calls = send === null ? null : new IpcCalls(send);
  }

  /** The memory store now serving `route` (a reload may replace it). */
  register(route: string, store: CacheStore): void {
    this.stores.set(route, new WeakRef(store));
  }

  /** Purges here and in every other worker; resolves with the number of entries removed in all. */
  purge(route: string, key: string, prefix: boolean): Promise<number> | number {
    const local = this.purgeHere(route, key, prefix);
    if (this.calls === null) return local;
    return this.calls
      .call({ type: 'cache-purge', route, key, prefix }, PURGE_TIMEOUT_MS)
      .then((others) => local + others.count);
  }

  /** Feed every message from the primary here; returns true when it was the cache's. */
  receive(m: { type?: string }): boolean {
    if (m.type === 'cache-purged') {
      this.calls?.receive(m as PurgeReply); // a late count is dropped: its purge has been answered
      return true;
    }
    if (m.type === 'cache-purge') {
      const request = m as PurgeRequest;
      this.send?.({
        type: 'cache-purged',
        id: request.id,
        count: this.purgeHere(request.route, request.key, request.prefix),
      });
      return true;
    }
    return false;
  }

  /**
   * The admin API's purge: the URL (`host` + `path` + `query`) or every URL whose path starts with `path`
   * (`prefix`), whichever of host, path and query a route's cache key holds, in every memory cache of this process
   * and in each of `shared` (the current config's Redis caches, one per namespace). Resolves with the number of
   * entries removed; rejects with TP_STORE_UNAVAILABLE when a shared store fails (the entry may still be served).
   */
  async purgeEverywhere(
    target: {
      readonly host?: string;
      readonly path: string;
      readonly query: string;
      readonly prefix: boolean;
    },
    shared: Iterable<CacheStore> = [],
  ): Promise<number> {
    const host = target.host?.toLowerCase();
    // A URL key is [host] path [query]; a host never holds "/", so the path starts at the first "/".
    const test = (urlKey: string): boolean => {
      const slash = urlKey.indexOf('/');
      if (slash === -1) return false;
      const keyHost = urlKey.slice(0, slash);
      if (host !== undefined && keyHost !== '' && keyHost !== host) return false;
      const rest = urlKey.slice(slash);
      if (target.prefix) return rest.startsWith(target.path);
      return rest === target.path || rest === target.path + target.query;
    };
    let removed = 0;
    // Memory stores answer synchronously.
    for (const ref of this.stores.values()) removed += (ref.deref()?.purgeMatching(test) ?? 0) as number;
    try {
      // Every passing key holds the path: a Redis store SCANs only those.
      const counts = await Promise.all([...shared].map((store) => store.purgeMatching(test, target.path)));
      for (const n of counts) removed += n;
    } catch (err) {
      throw new TurnpikeError('TP_STORE_UNAVAILABLE', `a Redis cache store did not purge: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return removed;
  }

  private purgeHere(route: string, key: string, prefix: boolean): number {
    const store = this.stores.get(route)?.deref();
    if (store === undefined) return 0;
    // Memory stores answer synchronously.
    return (prefix ? store.purgePrefix(key) : store.purge(key)) as number;
  }
}

export interface FanoutWorker {
  readonly id: number;
  isConnected(): boolean;
  send(m: PurgeRequest | PurgeReply): void;
}

/** The primary's side: a worker's purge goes to every other worker; their counts come back summed. */
export class PurgeRelay {
  private nextId = 1;
  private readonly waiting = new Map<number, { remaining: number; count: number; readonly finish: () => void }>();

  relay(from: FanoutWorker, request: PurgeRequest, workers: Iterable<FanoutWorker>): void {
    const others = [...workers].filter((w) => w !== from && w.isConnected());
    const id = this.nextId++;
    const state = {
      remaining: others.length,
      count: 0,
      finish: () => {
        clearTimeout(timer);
        if (!this.waiting.delete(id)) return;
        if (from.isConnected()) from.send({ type: 'cache-purged', id: request.id, count: state.count });
      },
    };
    const timer = setTimeout(state.finish, FANOUT_TIMEOUT_MS);
    this.waiting.set(id, state);
    if (others.length === 0) return state.finish();
    for (const w of others) w.send({ ...request, id });
  }

  /** A worker's count for a relayed purge. */
  receive(reply: PurgeReply): void {
    const state = this.waiting.get(reply.id);
    if (state === undefined) return;
    state.count += reply.count;
    if (--state.remaining === 0) state.finish();
  }
}
