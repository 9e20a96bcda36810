// Bounded admission in front of an upstream: at most `maxRequests` client requests sent to its targets at once
// (per gateway process), the next `queue` wait in order for a slot up to `wait` ms, the rest are refused at once.
// Without it undici queues every request past its connections, without bound (Envoy's circuit breaker
// max_requests / max_pending_requests, HAProxy's maxconn / maxqueue / timeout queue).

/** A request waiting for a slot. */
export interface Waiter {
  readonly granted: () => void;
  readonly refused: () => void;
  timer: NodeJS.Timeout | null;
}

export class Admission {
  maxRequests: number;
  queue: number;
  /** How long a request may wait in the queue (ms). */
  wait: number;
  /** Requests holding a slot. */
  active = 0;
  /** In arrival order; a Set so that a client leaving the queue is removed at once. */
  private readonly waiting = new Set<Waiter>();

  constructor(maxRequests: number, queue: number, wait: number) {
    this.maxRequests = maxRequests;
    this.queue = queue;
    this.wait = wait;
  }

  /** A reload's settings; counts and waiters are kept, and a raised limit lets waiters in at once. */
  configure(maxRequests: number, queue: number, wait: number): void {
    this.maxRequests = maxRequests;
    this.queue = queue;
    this.wait = wait;
    this.active++;
    this.leave();
  }

  get queued(): number {
    return this.waiting.size;
  }

  /** Takes a slot if one is free. */
  tryEnter(): boolean {
    if (this.active >= this.maxRequests) return false;
    this.active++;
    return true;
  }

  /** Queues for the next free slot (`granted` then holds it), or returns null when the queue is full. */
  enqueue(granted: () => void, refused: () => void): Waiter | null {
    if (this.waiting.size >= this.queue) return null;
    const waiter: Waiter = { granted, refused, timer: null };
    waiter.timer = setTimeout(() => {
      this.waiting.delete(waiter);
      refused();
    }, this.wait);
    this.waiting.add(waiter);
    return waiter;
  }

  /** A waiter whose client left. */
  cancel(waiter: Waiter): void {
    if (!this.waiting.delete(waiter)) return;
    if (waiter.timer !== null) clearTimeout(waiter.timer);
  }

  /** Gives a slot back: the longest waiter takes it over while the limit allows (a reload may have lowered it). */
  leave(): void {
    this.active--;
    while (this.active < this.maxRequests && this.waiting.size > 0) {
      const next = this.waiting.values().next().value!;
      this.waiting.delete(next);
      if (next.timer !== null) clearTimeout(next.timer);
      this.active++;
      next.granted();
    }
  }
}
