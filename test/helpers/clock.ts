// A clock that moves only when a test says so: give it to startGatewayYaml (or to one component) and `advance`
// it instead of sleeping until an entry goes stale, a slow start ramps up or the next health probe is due.
import type { Clock } from '../../src/clock.ts';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class ManualClock implements Clock {
  /** Starts at the real time, so the Date headers of real backends read as just sent. */
  private wall = Date.now();
  /** Any positive start: only differences mean anything (and 0 means "never" to some readers). */
  private mono = 1_000_000;
  private timers: Timer[] = [];
  private seq = 0;
  private waiters: { n: number; resolve: () => void }[] = [];

  readonly now = (): number => this.wall;
  readonly monotonic = (): number => this.mono;

  readonly schedule = (ms: number, fn: () => void): (() => void) => {
    const timer: Timer = { at: this.mono + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const w of [...this.waiters]) {
      if (this.timers.length >= w.n) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
    return () => {
      const i = this.timers.indexOf(timer);
      if (i !== -1) this.timers.splice(i, 1);
    };
  };

  /** Moves time forward by `ms`, running each timer that falls due on the way at its own time, in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.wall += next.at - this.mono;
      this.mono = next.at;
      next.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Resolves once `n` timers are waiting (something that finishes real I/O, such as a health probe, schedules
   * its next step); fails after `timeoutMs` of real time.
   */
  whenPending(n: number, what: string, timeoutMs = 5000): Promise<void> {
    if (this.timers.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        resolve: () => {
          clearTimeout(deadline);
          resolve();
        },
      };
      const deadline = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${n} timer(s): ${what} (${this.timers.length} pending)`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
