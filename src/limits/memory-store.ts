// The in-process limit store: GCRA counters and concurrency slots in Maps. Used directly in a single process and by
// the primary on behalf of its workers (over IPC), so it depends on nothing but the store interface and GCRA.
import { gcraConsume, gcraPeek } from './gcra.ts';
import type { ConcurrencyStore, LimitSpec, RateDecision, RateStore } from './shared-store.ts';

export interface MemoryLimitStoreOptions {
  /** Clock in integer microseconds (tests inject a simulated one). */
  readonly now?: () => number;
  /** How often expired counters are dropped; 0 = never on a timer (call sweep()). */
  readonly sweepIntervalMs?: number;
  /** Counter keys kept at most; beyond it the oldest key is dropped (that key starts afresh). */
  readonly maxKeys?: number;
}

interface RateEntry {
  readonly tats: number[];
  /** µs after which every TAT is in the past: the entry means "fresh" and can go. */
  expiresUs: number;
}

interface Waiter {
  readonly resolve: (granted: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

interface Slots {
  active: number;
  /** The latest `max` asked for: a reload that lowers it takes effect as slots are released. */
  max: number;
  readonly waiters: Waiter[];
}

const wallClockUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

export class MemoryLimitStore implements RateStore, ConcurrencyStore {
  private readonly rates = new Map<string, RateEntry>();
  private readonly slots = new Map<string, Slots>();
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly timer: NodeJS.Timeout | null;

  constructor(options: MemoryLimitStoreOptions = {}) {
    this.now = options.now ?? wallClockUs;
    this.maxKeys = options.maxKeys ?? 1_000_000;
    const every = options.sweepIntervalMs ?? 30_000;
    this.timer = every > 0 ? setInterval(() => this.sweep(), every).unref() : null;
  }

  /** Counter keys held (for tests and metrics). */
  get rateKeys(): number {
    return this.rates.size;
  }

  consume(key: string, limits: readonly LimitSpec[]): RateDecision {
    const now = this.now();
    let entry = this.rates.get(key);
    if (entry === undefined) {
      if (this.rates.size >= this.maxKeys) this.evict();
      entry = { tats: [], expiresUs: 0 };
      this.rates.set(key, entry);
    }
    const decision = gcraConsume(entry.tats, now, limits);
    if (decision.allowed) {
      let latest = 0;
      for (const tat of entry.tats) if (tat > latest) latest = tat;
      entry.expiresUs = latest;
    }
    return decision;
  }

  peek(key: string, limits: readonly LimitSpec[]): RateDecision {
    return gcraPeek(this.rates.get(key)?.tats ?? [], this.now(), limits);
  }

  /** Drops counters whose every TAT has passed (they would read as fresh anyway). Returns how many went. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const [key, entry] of this.rates) {
      if (entry.expiresUs <= now) {
        this.rates.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  private evict(): void {
    if (this.sweep() > 0) return;
    // Still full of live counters: drop the oldest inserted (Map order), as a bounded cache would.
    const oldest = this.rates.keys().next();
    if (!oldest.done) this.rates.delete(oldest.value);
  }

  acquire(key: string, max: number, queue: number, queueTimeoutMs: number): boolean | Promise<boolean> {
    let s = this.slots.get(key);
    if (s === undefined) {
      s = { active: 0, max, waiters: [] };
      this.slots.set(key, s);
    }
    s.max = max;
    // Waiters go first (FIFO): a newcomer never overtakes the queue.
    if (s.active < max && s.waiters.length === 0) {
      s.active++;
      return true;
    }
    if (s.waiters.length >= queue) {
      if (s.active === 0 && s.waiters.length === 0) this.slots.delete(key);
      return false;
    }
    const slots = s;
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const i = slots.waiters.indexOf(waiter);
          if (i !== -1) slots.waiters.splice(i, 1);
          if (slots.active === 0 && slots.waiters.length === 0) this.slots.delete(key);
          resolve(false);
        }, queueTimeoutMs),
      };
      slots.waiters.push(waiter);
    });
  }

  release(key: string): void {
    const s = this.slots.get(key);
    if (s === undefined) return;
    if (s.active > 0) s.active--;
    while (s.waiters.length > 0 && s.active < s.max) {
      const next = s.waiters.shift()!;
      clearTimeout(next.timer);
      s.active++;
      next.resolve(true);
    }
    if (s.active === 0 && s.waiters.length === 0) this.slots.delete(key);
  }

  /** In-flight slots and waiters of a key (for tests and metrics). */
  slotsOf(key: string): { active: number; waiting: number } {
    const s = this.slots.get(key);
    return { active: s?.active ?? 0, waiting: s?.waiters.length ?? 0 };
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    for (const s of this.slots.values()) for (const w of s.waiters) clearTimeout(w.timer);
  }
}
