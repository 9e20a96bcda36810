// The dashboard's numbers, kept as a subscriber of one gateway's events: per route, a ring of per-second buckets
// over the last 5 minutes (requests, 5xx, a small fixed latency histogram for p50/p99); rate-limit decisions by
// route and by consumer; cache outcomes; the recent reloads; L4 sessions open and closed. The admin dashboard
// stream (src/admin/endpoints/dashboard.ts) reads its raw data (raw()) once a second and summarises it with
// dashboard-summary.ts, merged across workers when there are several; nothing here does I/O.
import type { RequestContext } from '../request-context.ts';
import {
  LATENCY_BOUNDS_MS,
  MAX_RELOADS,
  SERIES_SECONDS,
  summarizeDashboard,
  WINDOW_SECONDS,
  type DashboardRaw,
  type DashboardSummary,
  type DecisionCount,
  type RouteRaw,
} from './dashboard-summary.ts';
import { CHANNELS, subscribeAll, type Gateway, type L4SessionEvent, type Subscriptions } from './events.ts';

export { LATENCY_BOUNDS_MS, WINDOW_SECONDS } from './dashboard-summary.ts';
export type { DashboardRaw, DashboardSummary } from './dashboard-summary.ts';

/** Routes, consumers and listeners tracked at most (a flood of distinct consumer names must not grow memory). */
const MAX_KEYS = 200;

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

  /** The window's counts and raw histograms (they add up across workers; see dashboard-summary.ts). */
  raw(): DashboardRaw {
    const now = this.clock();
    const second = Math.floor(now / 1000);
    const routes: RouteRaw[] = [];
    for (const [route, r] of this.routes) {
      const histogram = new Array<number>(NB).fill(0);
      const series = new Array<number>(SERIES_SECONDS).fill(0);
      let requests = 0;
      let errors = 0;
      r.each(second, WINDOW_SECONDS, (o, age) => {
        if (r.values[o] === 0) return; // an idle second: nothing in its histogram either
        requests += r.values[o]!;
        errors += r.values[o + 1]!;
        if (age < SERIES_SECONDS) series[SERIES_SECONDS - 1 - age] = r.values[o]!;
        for (let b = 0; b < NB; b++) histogram[b]! += r.values[o + 2 + b]!;
      });
      if (requests > 0) routes.push({ route, requests, errors, histogram, series });
    }
    const decisions = (map: Map<string, SecondRing>): DecisionCount[] =>
      [...map]
        .map(([key, r]) => ({
          key,
          allowed: r.sum(second, WINDOW_SECONDS, 0),
          limited: r.sum(second, WINDOW_SECONDS, 1),
        }))
        .filter((d) => d.allowed + d.limited > 0);
    return {
      now,
      routes,
      rateLimits: { byRoute: decisions(this.limitsByRoute), byConsumer: decisions(this.limitsByConsumer) },
      cache: { hits: this.cache.sum(second, WINDOW_SECONDS, 0), misses: this.cache.sum(second, WINDOW_SECONDS, 1) },
      reloads: [...this.reloads],
      l4: [...this.l4].map(([listener, s]) => ({
        listener,
        protocol: s.protocol,
        open: s.open,
        closed: s.ring.sum(second, WINDOW_SECONDS, 0),
        errors: s.ring.sum(second, WINDOW_SECONDS, 1),
        bytesIn: s.ring.sum(second, WINDOW_SECONDS, 2),
        bytesOut: s.ring.sum(second, WINDOW_SECONDS, 3),
      })),
    };
  }

  /** This process's summary (the admin stream summarises through the same function, merged or not). */
  summary(): DashboardSummary {
    return summarizeDashboard(this.raw());
  }
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
