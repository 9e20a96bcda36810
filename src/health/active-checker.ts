// Active health checks of upstream targets (HAProxy `check`, Envoy `health_checks`): each target is probed on
// its own timer, and flips healthy/unhealthy after a run of consecutive results. Self-contained: the runtime
// feeds it targets with `set` and hears about transitions through `onChange`.
import { systemClock, type Clock } from '../clock.ts';
import { probe, type ProbeResult } from './probe.ts';

export interface ActiveCheckSettings {
  readonly type: 'http' | 'tcp';
  readonly path: string; // http only, e.g. '/healthz'
  readonly expectStatus: readonly [number, number]; // inclusive range, e.g. [200, 399]
  readonly interval: number; // ms between probes of one target
  readonly timeout: number; // ms; a probe slower than this fails
  readonly healthyThreshold: number; // consecutive passes to turn healthy
  readonly unhealthyThreshold: number; // consecutive failures to turn unhealthy
  readonly host?: string; // Host header to send (default: the target's host:port)
}

export interface CheckedTarget {
  readonly key: string; // identity of the target (stable across reloads while its settings are unchanged)
  readonly url: string; // origin, e.g. http://127.0.0.1:9001 (http: or https:)
  readonly check: ActiveCheckSettings;
}

export interface TargetHealth {
  readonly url: string;
  readonly healthy: boolean;
  /** Duration of the last finished probe (ms), and when it started (epoch ms). */
  readonly lastProbeMs?: number;
  readonly lastProbeAt?: number;
  /** Reason of the last failed probe: 'status 503', 'ECONNREFUSED', 'timeout'... */
  readonly lastError?: string;
  readonly passes: number; // consecutive
  readonly failures: number; // consecutive
}

export type HealthLog = (msg: string, fields: object) => void;

/** Probes are spread by ±10 % so targets configured together do not get probed in lockstep. */
const JITTER = 0.1;

interface Entry {
  readonly target: CheckedTarget;
  readonly origin: URL;
  readonly fingerprint: string;
  healthy: boolean;
  passes: number;
  failures: number;
  lastProbeMs?: number;
  lastProbeAt?: number;
  lastError?: string;
  /** Cancels the wait for the next probe. */
  timer?: () => void;
  inFlight?: AbortController;
  stopped: boolean;
}

/** Everything that shapes probing; a target whose fingerprint changes is probed afresh. */
function fingerprint(t: CheckedTarget): string {
  const c = t.check;
  return JSON.stringify([
    t.url,
    c.type,
    c.path,
    c.expectStatus,
    c.interval,
    c.timeout,
    c.healthyThreshold,
    c.unhealthyThreshold,
    c.host ?? null,
  ]);
}

export class ActiveHealthChecker {
  private readonly entries = new Map<string, Entry>();
  private readonly onChange: (key: string, healthy: boolean) => void;
  private readonly log: HealthLog;
  private readonly clock: Clock;

  /** `clock` times the intervals between probes (a probe's own timeout is real time: it bounds real I/O). */
  constructor(onChange: (key: string, healthy: boolean) => void, options: { log?: HealthLog; clock?: Clock } = {}) {
    this.onChange = onChange;
    this.log = options.log ?? (() => {});
    this.clock = options.clock ?? systemClock;
  }

  /** Reconciles the set of checked targets: starts probing new ones, stops removed ones, keeps the state (healthy/unhealthy, counters) of targets whose key and settings are unchanged. */
  set(targets: readonly CheckedTarget[]): void {
    const wanted = new Map<string, CheckedTarget>();
    for (const t of targets) wanted.set(t.key, t); // a repeated key: the last one wins
    for (const [key, entry] of this.entries) {
      if (!wanted.has(key)) this.remove(key, entry);
    }
    for (const [key, target] of wanted) {
      const old = this.entries.get(key);
      const print = fingerprint(target);
      if (old?.fingerprint === print) continue; // untouched: same timer, same counters
      // New, or its settings changed: fresh counters, but a changed check alone does not flip the flag.
      if (old) this.remove(key, old);
      const entry: Entry = {
        target,
        origin: new URL(target.url),
        fingerprint: print,
        healthy: old?.healthy ?? true, // start healthy so a fresh gateway serves at once
        passes: 0,
        failures: 0,
        stopped: false,
      };
      this.entries.set(key, entry);
      void this.run(entry);
    }
  }

  /** Unknown keys (targets without an active check) count as healthy. */
  isHealthy(key: string): boolean {
    return this.entries.get(key)?.healthy ?? true;
  }

  /** Snapshot for an admin view. */
  status(): Map<string, TargetHealth> {
    const out = new Map<string, TargetHealth>();
    for (const [key, e] of this.entries) {
      out.set(key, {
        url: e.target.url,
        healthy: e.healthy,
        lastProbeMs: e.lastProbeMs,
        lastProbeAt: e.lastProbeAt,
        lastError: e.lastError,
        passes: e.passes,
        failures: e.failures,
      });
    }
    return out;
  }

  /** Clears every timer and aborts in-flight probes. */
  stop(): void {
    for (const [key, entry] of this.entries) this.remove(key, entry);
  }

  private remove(key: string, entry: Entry): void {
    entry.stopped = true;
    entry.timer?.();
    entry.inFlight?.abort();
    if (this.entries.get(key) === entry) this.entries.delete(key);
  }

  /** One probe, then the next is scheduled from its end, so probes of one target never overlap. */
  private async run(entry: Entry): Promise<void> {
    entry.timer = undefined;
    const controller = new AbortController();
    entry.inFlight = controller;
    const startedAt = Date.now();
    let result: ProbeResult;
    try {
      result = await probe(entry.origin, entry.target.check, controller.signal);
    } catch (err) {
      result = { ok: false, reason: (err as Error).message, ms: Date.now() - startedAt };
    }
    entry.inFlight = undefined;
    if (entry.stopped) return; // removed, replaced or stopped while probing: the result is stale
    entry.lastProbeAt = startedAt;
    entry.lastProbeMs = result.ms;
    this.record(entry, result);
    if (entry.stopped) return; // an onChange listener may have called set() or stop()
    const interval = Math.max(1, entry.target.check.interval);
    const delay = interval * (1 - JITTER + 2 * JITTER * Math.random());
    entry.timer = this.clock.schedule(delay, () => void this.run(entry)); // unref'd: checks alone never keep the process alive
  }

  private record(entry: Entry, result: ProbeResult): void {
    const check = entry.target.check;
    if (result.ok) {
      entry.failures = 0;
      entry.passes++;
      if (!entry.healthy && entry.passes >= Math.max(1, check.healthyThreshold)) this.flip(entry, true, result.reason);
    } else {
      entry.passes = 0;
      entry.failures++;
      entry.lastError = result.reason;
      if (entry.healthy && entry.failures >= Math.max(1, check.unhealthyThreshold))
        this.flip(entry, false, result.reason);
    }
  }

  private flip(entry: Entry, healthy: boolean, reason: string): void {
    entry.healthy = healthy;
    const { key, url } = entry.target;
    const count = healthy ? entry.passes : entry.failures;
    this.log(healthy ? 'upstream target is healthy' : 'upstream target is unhealthy', {
      key,
      url,
      healthy,
      reason,
      [healthy ? 'passes' : 'failures']: count,
    });
    try {
      this.onChange(key, healthy);
    } catch (err) {
      // A failing listener must not stop the checks of this target.
      this.log('health change listener failed', { key, url, error: (err as Error).message });
    }
  }
}
