// Time as the gateway reads it. Production runs on the system clock; a test gives startGateway (or one
// component) a manual clock (test/helpers/clock.ts) and moves it forward instead of sleeping. What measures real
// I/O (request durations, probe and upstream timeouts, drain deadlines) stays on real time.

export interface Clock {
  /** Milliseconds since the epoch (Date.now): what HTTP dates are compared with (cache freshness, ages). */
  readonly now: () => number;
  /** Monotonic milliseconds (performance.now), for durations only: slow start, breaker and ejection windows. */
  readonly monotonic: () => number;
  /** Calls `fn` once `ms` have passed on this clock; the timer never keeps the process alive. Returns its cancel. */
  readonly schedule: (ms: number, fn: () => void) => () => void;
}

export const systemClock: Clock = {
  now: Date.now,
  monotonic: performance.now.bind(performance),
  schedule(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
