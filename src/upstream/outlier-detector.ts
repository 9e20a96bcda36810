// Passive health checking (Envoy's outlier detection, NGINX's max_fails/fail_timeout): a target that fails
// `consecutiveFailures` requests in a row leaves the rotation for a while, longer each time it is ejected
// again soon after, and never so many targets at once that the rest would take all the load.
// record and isEjected allocate nothing; setTargets (per reload) does.
export interface OutlierDetectorOptions {
  /** Failures in a row that eject a target. */
  readonly consecutiveFailures: number;
  /** Base ejection time, ms: the n-th ejection in a row lasts n × ejectFor, capped at 300 s. */
  readonly ejectFor: number;
  /** Most targets (0..100 % of them) ejected at once. */
  readonly maxEjectedPercent: number;
  /** Clock in ms; injectable so tests simulate time. Default performance.now. */
  readonly now?: () => number;
}

interface Health {
  failures: number; // in a row; reset by a success and by an ejection
  ejections: number; // multiplier of ejectFor; decays by one per ejectFor spent back in rotation
  ejected: boolean;
  until: number; // while ejected: when it returns
  since: number; // when it last returned, for the decay
}

// Envoy's default max_ejection_time (a longer ejectFor is its own cap).
const MAX_EJECT_MS = 300_000;

export class OutlierDetector {
  private readonly consecutiveFailures: number;
  private readonly ejectFor: number;
  private readonly maxEjectMs: number;
  private readonly maxMultiplier: number; // the multiplier stops where the cap is reached, so decay shows at once
  private readonly maxEjectedPercent: number;
  private readonly now: () => number;
  private byKey = new Map<string, Health>();
  private all: Health[] = []; // the same states, for index loops
  private ejected = 0;

  constructor(options: OutlierDetectorOptions) {
    if (!(options.ejectFor > 0) || !(options.consecutiveFailures >= 1)) {
      throw new RangeError('outlier detector: ejectFor must be > 0 and consecutiveFailures >= 1');
    }
    this.consecutiveFailures = options.consecutiveFailures;
    this.ejectFor = options.ejectFor;
    this.maxEjectMs = Math.max(MAX_EJECT_MS, options.ejectFor);
    this.maxMultiplier = Math.ceil(this.maxEjectMs / options.ejectFor);
    this.maxEjectedPercent = options.maxEjectedPercent;
    this.now = options.now ?? (() => performance.now());
  }

  /** Targets ejected now (returns the ones whose time has passed first). */
  get ejectedCount(): number {
    this.sweep(this.now());
    return this.ejected;
  }

  /** Kept keys keep their state (a reload does not pardon a failing target); removed keys are forgotten. */
  setTargets(keys: readonly string[]): void {
    const byKey = new Map<string, Health>();
    for (const key of keys) {
      if (byKey.has(key)) continue;
      byKey.set(key, this.byKey.get(key) ?? { failures: 0, ejections: 0, ejected: false, until: 0, since: 0 });
    }
    this.byKey = byKey;
    this.all = [...byKey.values()];
    this.ejected = 0;
    for (const h of this.all) if (h.ejected) this.ejected++;
  }

  /** Records one request's outcome; true when this call ejected the target or returned it (time passed). */
  record(key: string, failed: boolean): boolean {
    const h = this.byKey.get(key);
    if (h === undefined) return false; // removed while its request was in flight
    const now = this.now();
    const returned = this.expire(h, now);
    if (h.ejected) return false; // a request sent before it was ejected: already judged
    if (!failed) {
      h.failures = 0;
      return returned;
    }
    if (++h.failures < this.consecutiveFailures) return returned;
    this.sweep(now);
    // Over the cap: stay in rotation but keep the count, so its next failure tries again once room is made.
    if ((this.ejected + 1) * 100 > this.maxEjectedPercent * this.all.length) return returned;
    const decayed = Math.max(0, h.ejections - Math.floor((now - h.since) / this.ejectFor));
    h.ejections = Math.min(decayed + 1, this.maxMultiplier);
    h.until = now + Math.min(this.ejectFor * h.ejections, this.maxEjectMs);
    h.ejected = true;
    h.failures = 0;
    this.ejected++;
    return true;
  }

  /** Whether the target is out of rotation; returns it (lazily, no timer) once its time has passed. */
  isEjected(key: string): boolean {
    const h = this.byKey.get(key);
    if (h === undefined) return false;
    this.expire(h, this.now());
    return h.ejected;
  }

  /** When the earliest ejected target returns (same clock as `now`), or undefined if none is ejected. */
  nextReturnAt(): number | undefined {
    this.sweep(this.now());
    let next: number | undefined;
    for (let i = 0; i < this.all.length; i++) {
      const h = this.all[i];
      if (h.ejected && (next === undefined || h.until < next)) next = h.until;
    }
    return next;
  }

  private expire(h: Health, now: number): boolean {
    if (!h.ejected || now < h.until) return false;
    h.ejected = false;
    h.since = h.until; // it was back from then, even if nobody asked until later
    this.ejected--;
    return true;
  }

  private sweep(now: number): void {
    for (let i = 0; i < this.all.length; i++) this.expire(this.all[i], now);
  }
}
