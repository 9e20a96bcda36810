// The dashboard's numbers, kept as a subscriber of one gateway's events: per route, a ring of per-second buckets
// over the last 5 minutes (requests, 5xx, a small fixed latency histogram for p50/p99); rate-limit decisions by
// route and by consumer; cache outcomes; the recent reloads; L4 sessions open and closed. The admin dashboard
// stream (src/admin/endpoints/dashboard.ts) reads a summary of it once a second; nothing here does I/O.
import type { RequestContext } from '../request-context.ts';
import { CHANNELS, subscribeAll, type Gateway, type L4SessionEvent, type Subscriptions } from './events.ts';

export const WINDOW_SECONDS = 300;
/** The "now" rate is over this many recent seconds; the sparkline shows this many. */
const RATE_SECONDS = 10;
const SERIES_SECONDS = 60;
const MAX_RELOADS = 20;
/** Routes, consumers and listeners tracked at most (a flood of distinct consumer names must not grow memory). */
const MAX_KEYS = 200;

/** Latency bucket upper bounds in ms (roughly x1.5 apart): a percentile is reported as its bucket's bound. */
export const LATENCY_BOUNDS_MS: readonly number[] = (() => {
  const out: number[] = [];
  for (let b = 0.25; b < 120_000; b *= 1.5) out.push(Math.round(b * 100) / 100);
  out.push(Infinity);
  return out;
})();
const NB = LATENCY_BOUNDS_MS.length;

function bucketOf(ms: number): number {
  let lo = 0;
  let hi = NB - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= LATENCY_BOUNDS_MS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Counters in a ring of per-second slots; a slot is reset when a new second lands on it. */
class SecondRing {
  private readonly stamp = new Float64Array(WINDOW_SECONDS).fill(-1);
  readonly width: number;
  readonly values: Uint32Array;

  constructor(width: number) {
    this.width = width;
    this.values = new Uint32Array(WINDOW_SECONDS * width);
  }

  /** The offset of `second`'s slot in `values`, cleared first if it held an older second. */
  slot(second: number): number {
    const i = second % WINDOW_SECONDS;
    if (this.stamp[i] !== second) {
      this.stamp[i] = second;
      this.values.fill(0, i * this.width, (i + 1) * this.width);
    }
    return i * this.width;
  }

  /** Calls `fn` with the offset of each slot inside (now - seconds, now]. */
  each(now: number, seconds: number, fn: (offset: number, age: number) => void): void {
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      const age = now - this.stamp[i]!;
      if (this.stamp[i]! >= 0 && age >= 0 && age < seconds) fn(i * this.width, age);
    }
  }

  /** Column `col` summed over the last `seconds`. */
  sum(now: number, seconds: number, col: number): number {
    let n = 0;
    this.each(now, seconds, (o) => (n += this.values[o + col]!));
    return n;
  }
}

// Route slot layout: [requests, errors, histogram...].
const ROUTE_WIDTH = 2 + NB;

export interface RouteSummary {
  readonly route: string;
  /** Requests per second over the last 10 s. */
  readonly rps: number;
  /** Over the last 5 minutes: */
  readonly requests: number;
  /** Share of 5xx answers, 0..1. */
  readonly errorRate: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Requests per second for each of the last 60 s, oldest first. */
  readonly series: readonly number[];
}

export interface DecisionCount {
  readonly key: string;
  readonly allowed: number;
  readonly limited: number;
}

export interface DashboardSummary {
  readonly time: string;
  readonly windowSeconds: number;
  readonly routes: readonly RouteSummary[];
  readonly rateLimits: { readonly byRoute: readonly DecisionCount[]; readonly byConsumer: readonly DecisionCount[] };
  readonly cache: { readonly hits: number; readonly misses: number; readonly hitRatio: number | null };
  readonly reloads: readonly {
    readonly time: string;
    readonly ok: boolean;
    readonly version: number;
    readonly error?: string;
  }[];
  readonly l4: readonly {
    readonly listener: string;
    readonly protocol: string;
    readonly open: number;
    readonly closed: number;
    readonly errors: number;
    readonly bytesIn: number;
    readonly bytesOut: number;
  }[];
}

interface L4Stats {
  protocol: string;
  open: number;
  /** [closed, errors, bytesIn, bytesOut] per second. */
  ring: SecondRing;
}

export class DashboardStats {
  private readonly routes = new Map<string, SecondRing>();
  private readonly limitsByRoute = new Map<string, SecondRing>();
  private readonly limitsByConsumer = new Map<string, SecondRing>();
  /** [hits, misses] per second. */
  private readonly cache = new SecondRing(2);
  private readonly reloads: { time: string; ok: boolean; version: number; error?: string }[] = [];
  private readonly l4 = new Map<string, L4Stats>();

  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  private second(): number {
    return Math.floor(this.clock() / 1000);
  }

  private ring<K>(map: Map<K, SecondRing>, key: K, width: number): SecondRing | undefined {
    let r = map.get(key);
    if (r === undefined) {
      if (map.size >= MAX_KEYS) return undefined;
      r = new SecondRing(width);
      map.set(key, r);
    }
    return r;
  }

  request(route: string, status: number, durationMs: number): void {
    const r = this.ring(this.routes, route || '(no route)', ROUTE_WIDTH);
    if (r === undefined) return;
    const o = r.slot(this.second());
    r.values[o]!++;
    if (status >= 500) r.values[o + 1]!++;
    r.values[o + 2 + bucketOf(durationMs)]!++;
  }

  rateLimit(route: string, consumer: string | null, allowed: boolean): void {
    const col = allowed ? 0 : 1;
    const now = this.second();
    const byRoute = this.ring(this.limitsByRoute, route || '(no route)', 2);
    if (byRoute !== undefined) byRoute.values[byRoute.slot(now) + col]!++;
    const byConsumer = this.ring(this.limitsByConsumer, consumer ?? '(anonymous)', 2);
    if (byConsumer !== undefined) byConsumer.values[byConsumer.slot(now) + col]!++;
  }

  cacheStatus(status: string): void {
    // A revalidated or stale answer came from the cache; a bypass is neither a hit nor a miss.
    const col = status === 'HIT' || status === 'STALE' || status === 'REVALIDATED' ? 0 : status === 'MISS' ? 1 : -1;
    if (col >= 0) this.cache.values[this.cache.slot(this.second()) + col]!++;
  }

  reload(ok: boolean, version: number, error: string | null): void {
    this.reloads.unshift({ time: new Date(this.clock()).toISOString(), ok, version, ...(error ? { error } : {}) });
    if (this.reloads.length > MAX_RELOADS) this.reloads.pop();
  }

  private l4Stats(listener: string, protocol: string): L4Stats | undefined {
    let s = this.l4.get(listener);
    if (s === undefined) {
      if (this.l4.size >= MAX_KEYS) return undefined;
      s = { protocol, open: 0, ring: new SecondRing(4) };
      this.l4.set(listener, s);
    }
    return s;
  }

  l4Open(listener: string, protocol: string): void {
    const s = this.l4Stats(listener, protocol);
    if (s !== undefined) s.open++;
  }

  l4Close(e: Pick<L4SessionEvent, 'listener' | 'protocol' | 'bytesIn' | 'bytesOut' | 'error'>): void {
    const s = this.l4Stats(e.listener, e.protocol);
    if (s === undefined) return;
    s.open = Math.max(0, s.open - 1);
    const o = s.ring.slot(this.second());
    s.ring.values[o]!++;
    if (e.error) s.ring.values[o + 1]!++;
    s.ring.values[o + 2]! += e.bytesIn;
    s.ring.values[o + 3]! += e.bytesOut;
  }

  summary(): DashboardSummary {
    const now = this.second();
    const routes: RouteSummary[] = [];
    for (const [route, r] of this.routes) {
      const hist = new Array<number>(NB).fill(0);
      const series = new Array<number>(SERIES_SECONDS).fill(0);
      let requests = 0;
      let errors = 0;
      let recent = 0;
      r.each(now, WINDOW_SECONDS, (o, age) => {
        if (r.values[o] === 0) return; // an idle second: nothing in its histogram either
        requests += r.values[o]!;
        errors += r.values[o + 1]!;
        if (age < RATE_SECONDS) recent += r.values[o]!;
        if (age < SERIES_SECONDS) series[SERIES_SECONDS - 1 - age] = r.values[o]!;
        for (let b = 0; b < NB; b++) hist[b]! += r.values[o + 2 + b]!;
      });
      if (requests === 0) continue;
      routes.push({
        route,
        rps: Math.round((recent / RATE_SECONDS) * 10) / 10,
        requests,
        errorRate: errors / requests,
        p50Ms: percentile(hist, requests, 0.5),
        p99Ms: percentile(hist, requests, 0.99),
        series,
      });
    }
    routes.sort((a, b) => a.route.localeCompare(b.route));
    const decisions = (map: Map<string, SecondRing>): DecisionCount[] =>
      [...map]
        .map(([key, r]) => ({ key, allowed: r.sum(now, WINDOW_SECONDS, 0), limited: r.sum(now, WINDOW_SECONDS, 1) }))
        .filter((d) => d.allowed + d.limited > 0)
        .sort((a, b) => b.limited - a.limited || a.key.localeCompare(b.key));
    const hits = this.cache.sum(now, WINDOW_SECONDS, 0);
    const misses = this.cache.sum(now, WINDOW_SECONDS, 1);
    return {
      time: new Date(this.clock()).toISOString(),
      windowSeconds: WINDOW_SECONDS,
      routes,
      rateLimits: { byRoute: decisions(this.limitsByRoute), byConsumer: decisions(this.limitsByConsumer) },
      cache: { hits, misses, hitRatio: hits + misses > 0 ? hits / (hits + misses) : null },
      reloads: [...this.reloads],
      l4: [...this.l4].map(([listener, s]) => ({
        listener,
        protocol: s.protocol,
        open: s.open,
        closed: s.ring.sum(now, WINDOW_SECONDS, 0),
        errors: s.ring.sum(now, WINDOW_SECONDS, 1),
        bytesIn: s.ring.sum(now, WINDOW_SECONDS, 2),
        bytesOut: s.ring.sum(now, WINDOW_SECONDS, 3),
      })),
    };
  }
}

/** The upper bound of the bucket holding the q-th quantile (the last finite bound for the overflow bucket). */
function percentile(hist: readonly number[], total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < NB; b++) {
    seen += hist[b]!;
    if (seen >= rank) return Number.isFinite(LATENCY_BOUNDS_MS[b]) ? LATENCY_BOUNDS_MS[b]! : LATENCY_BOUNDS_MS[NB - 2]!;
  }
  return null;
}

/** Feeds `stats` from `gateway`'s events; returns the unsubscribe. */
export function subscribeDashboardStats(gateway: Gateway, stats: DashboardStats): () => void {
  const subscriptions: Subscriptions = [
    [
      CHANNELS.requestEnd,
      (m) => {
        const { ctx } = m as { ctx: RequestContext };
        if (ctx.gateway === gateway) stats.request(ctx.routeName, ctx.status, performance.now() - ctx.startTime);
      },
    ],
    [
      CHANNELS.rateLimit,
      (m) => {
        const { ctx, allowed } = m as { ctx: RequestContext; allowed: boolean };
        if (ctx.gateway === gateway)
          stats.rateLimit(ctx.routeName, ctx.identity?.consumer?.name ?? ctx.identity?.subject ?? null, allowed);
      },
    ],
    [
      CHANNELS.cache,
      (m) => {
        const { ctx, status } = m as { ctx: RequestContext; status: string };
        if (ctx.gateway === gateway) stats.cacheStatus(status);
      },
    ],
    [
      CHANNELS.reload,
      (m) => {
        const e = m as { gateway: Gateway; ok: boolean; version: number; error: string | null };
        if (e.gateway === gateway) stats.reload(e.ok, e.version, e.error);
      },
    ],
    [
      CHANNELS.l4Open,
      (m) => {
        const e = m as { gateway: Gateway; listener: string; protocol: string };
        if (e.gateway === gateway) stats.l4Open(e.listener, e.protocol);
      },
    ],
    [
      CHANNELS.l4Close,
      (m) => {
        const e = m as L4SessionEvent;
        if (e.gateway === gateway) stats.l4Close(e);
      },
    ],
  ];
  return subscribeAll(subscriptions);
}
