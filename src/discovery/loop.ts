// The loop every provider runs per upstream: ask the source, apply the answer to the live pool, ask again after
// the TTL (never sooner than minRefresh). A failed source keeps the last set (one warn line per failure streak);
// an empty answer empties a pool that had targets only once it has lasted `emptyGrace`.
import type { Clock } from '../clock.ts';
import type { ErrorCode } from '../errors.ts';
import { CHANNELS, type Gateway } from '../observability/events.ts';
import { TargetSetApplier, type LivePool } from './apply.ts';
import type { NetworkGuard } from './guard.ts';
import type { Resolution, Resolve } from './provider.ts';

export interface LoopOptions {
  readonly upstream: string;
  readonly provider: string;
  /** What is watched, for log lines. */
  readonly source: string;
  readonly resolve: Resolve;
  /** The upstream's pool in the current snapshot (its run-time API acts on state that outlives reloads). */
  readonly pool: () => LivePool | undefined;
  readonly clock: Clock;
  readonly minRefreshMs: number;
  /** The wait after a failed round. */
  readonly retryMs: number;
  readonly emptyGraceMs: number;
  readonly gateway: Gateway;
  readonly log: { warn(fields: object, msg: string): void; info(fields: object, msg: string): void };
  /** The block's allowNetworks/denyNetworks: refused addresses leave each answer before it is applied. */
  readonly guard?: NetworkGuard;
  /** The loop this one replaces (a changed discover block): its targets are taken over, then diffed. */
  readonly previous?: DiscoveryLoop;
}

export class DiscoveryLoop {
  readonly applier: TargetSetApplier;
  private readonly o: LoopOptions;
  private cancel: (() => void) | null = null;
  private stopped = false;
  /** Aborts a round in progress (a watch waiting for a change) when the loop stops. */
  private readonly abort = new AbortController();
  /** Monotonic time the current run of empty answers began; undefined while answers have records. */
  private emptySince: number | undefined;
  private failing = false;
  /** A watching source's round still waiting for a change when an empty grace ended: the next round awaits it. */
  private pending: Promise<Resolution> | undefined;
  /** The origins the guard refused in the last answer, sorted and joined: a change is logged once. */
  private refusedKey = '';

  constructor(options: LoopOptions) {
    this.o = options;
    this.applier = new TargetSetApplier(options.previous?.applier);
  }

  /** Runs the first round now, then each round schedules the next on the clock. */
  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.cancel?.();
    this.cancel = null;
  }

  private async tick(): Promise<void> {
    const delay = await this.refresh();
    if (this.stopped) return;
    this.cancel = this.o.clock.schedule(delay, () => void this.tick());
  }

  /** One round: ask, apply; returns the ms until the next one. Tests call it directly. */
  async refresh(): Promise<number> {
    const o = this.o;
    let delay = o.minRefreshMs;
    try {
      const asked = await this.ask();
      if (this.stopped) return delay;
      const { answer, refused } = this.screen(asked);
      if (this.failing) {
        this.failing = false;
        o.log.info({ upstream: o.upstream, source: o.source }, 'discovery answers again');
      }
      if (answer.ttlMs !== undefined) delay = Math.max(o.minRefreshMs, answer.ttlMs);
      if (answer.targets.length === 0 && this.applier.current.length > 0) {
        const now = o.clock.monotonic();
        this.emptySince ??= now;
        const left = this.emptySince + o.emptyGraceMs - now;
        if (left > 0) {
          this.publish('empty', undefined, refused);
          // Ask again by the end of the grace at the latest, so an empty set is applied on time.
          return Math.min(delay, left);
        }
      }
      this.emptySince = undefined;
      const pool = o.pool();
      if (pool !== undefined && this.applier.apply(pool, answer.targets, o.source))
        o.log.info(
          { upstream: o.upstream, source: o.source, targets: answer.targets.map((t) => t.url) },
          'discovered targets',
        );
      this.publish(answer.targets.length === 0 ? 'empty' : 'resolved', undefined, refused);
    } catch (err) {
      if (this.stopped) return delay;
      const error = err instanceof Error ? err.message : String(err);
      if (!this.failing) {
        this.failing = true;
        o.log.warn(
          {
            code: 'TP_DISCOVERY_FAILED' satisfies ErrorCode,
            upstream: o.upstream,
            source: o.source,
            error,
            targets: this.applier.current.length,
          },
          'discovery failed; the last targets stay in use',
        );
      }
      this.publish('error', error);
      return o.retryMs;
    }
    return delay;
  }

  /**
   * The answer without the addresses the guard refuses: as if the source had not given them (nothing left is an
   * empty answer, under emptyGrace). One warn line per change of the refused set.
   */
  private screen(asked: Resolution): { answer: Resolution; refused: string[] } {
    const guard = this.o.guard;
    if (guard === undefined) return { answer: asked, refused: [] };
    const { kept, refused } = guard.split(asked.targets);
    const key = [...refused].sort().join(' ');
    if (key !== this.refusedKey) {
      this.refusedKey = key;
      if (refused.length > 0)
        this.o.log.warn(
          {
            code: 'TP_DISCOVERY_REFUSED' satisfies ErrorCode,
            upstream: this.o.upstream,
            source: this.o.source,
            refused,
          },
          'discovered addresses refused by allowNetworks/denyNetworks',
        );
    }
    return { answer: { ...asked, targets: kept }, refused };
  }

  /**
   * The source's answer. A watching source (minRefresh 0) answers only on a change, so within an empty grace its
   * round also ends when the grace does (the answer then is the same empty set), and the next round takes over
   * the request still waiting.
   */
  private ask(): Promise<Resolution> {
    const o = this.o;
    const asking = this.pending ?? o.resolve(this.abort.signal);
    this.pending = undefined;
    if (o.minRefreshMs > 0 || this.emptySince === undefined) return asking;
    const left = Math.max(0, this.emptySince + o.emptyGraceMs - o.clock.monotonic());
    return new Promise((resolve, reject) => {
      const cancel = o.clock.schedule(left, () => {
        this.pending = asking;
        asking.catch(() => {}); // settled by the round that takes it over
        resolve({ targets: [] });
      });
      asking.then(
        (answer) => (cancel(), resolve(answer)),
        (err: unknown) => (cancel(), reject(err as Error)),
      );
    });
  }

  private publish(outcome: 'resolved' | 'empty' | 'error', error?: string, refused: string[] = []): void {
    if (!CHANNELS.discovery.hasSubscribers) return;
    CHANNELS.discovery.publish({
      gateway: this.o.gateway,
      upstream: this.o.upstream,
      provider: this.o.provider,
      outcome,
      targets: this.applier.current.map((t) => t.url),
      ...(error !== undefined ? { error } : {}),
      ...(refused.length > 0 ? { refused } : {}),
    });
  }
}
