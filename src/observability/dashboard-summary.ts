// The dashboard's numbers as data that adds up (DashboardRaw: counts and raw latency histogram buckets, never
// percentiles), how several of them merge (the workers of one instance), and the one function that turns raw data
// into the summary the page shows. A single process summarises its own raw data through the same function, so a
// single process and a multi-worker instance cannot disagree on how a number is computed.

export const WINDOW_SECONDS = 300;
/** The "now" rate is over this many recent seconds; the sparkline shows this many. */
export const RATE_SECONDS = 10;
export const SERIES_SECONDS = 60;
export const MAX_RELOADS = 20;

/** Latency bucket upper bounds in ms (roughly x1.5 apart): a percentile is reported as its bucket's bound. */
export const LATENCY_BOUNDS_MS: readonly number[] = (() => {
  const out: number[] = [];
  for (let b = 0.25; b < 120_000; b *= 1.5) out.push(Math.round(b * 100) / 100);
  out.push(Infinity);
  return out;
})();
const NB = LATENCY_BOUNDS_MS.length;

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

export interface ReloadEntry {
  readonly time: string;
  readonly ok: boolean;
  readonly version: number;
  readonly error?: string;
}

export interface L4Row {
  readonly listener: string;
  readonly protocol: string;
  readonly open: number;
  readonly closed: number;
  readonly errors: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface DashboardSummary {
  readonly time: string;
  readonly windowSeconds: number;
  readonly routes: readonly RouteSummary[];
  readonly rateLimits: { readonly byRoute: readonly DecisionCount[]; readonly byConsumer: readonly DecisionCount[] };
  readonly cache: { readonly hits: number; readonly misses: number; readonly hitRatio: number | null };
  readonly reloads: readonly ReloadEntry[];
  readonly l4: readonly L4Row[];
}

/** One route over the window: counts and the latency histogram (one count per LATENCY_BOUNDS_MS bucket). */
export interface RouteRaw {
  readonly route: string;
  readonly requests: number;
  readonly errors: number;
  readonly histogram: readonly number[];
  /** Requests in each of the last 60 s, oldest first, ending at the second of `DashboardRaw.now`. */
  readonly series: readonly number[];
}

/** What one process counted over the window, in a form that sums across processes. */
export interface DashboardRaw {
  /** When it was read (epoch ms): the series end at this second. */
  readonly now: number;
  readonly routes: readonly RouteRaw[];
  readonly rateLimits: { readonly byRoute: readonly DecisionCount[]; readonly byConsumer: readonly DecisionCount[] };
  readonly cache: { readonly hits: number; readonly misses: number };
  readonly reloads: readonly ReloadEntry[];
  readonly l4: readonly L4Row[];
}

function sumDecisions(lists: readonly (readonly DecisionCount[])[]): DecisionCount[] {
  const by = new Map<string, { allowed: number; limited: number }>();
  for (const list of lists)
    for (const d of list) {
      const sum = by.get(d.key) ?? { allowed: 0, limited: 0 };
      sum.allowed += d.allowed;
      sum.limited += d.limited;
      by.set(d.key, sum);
    }
  return [...by].map(([key, d]) => ({ key, ...d }));
}

/**
 * A reload runs in every worker, so each lists it: an entry (same version, result and error) is kept as often as
 * the worker that lists it most often does, with that worker's times.
 */
function mergeReloads(lists: readonly (readonly ReloadEntry[])[]): ReloadEntry[] {
  const best = new Map<string, ReloadEntry[]>();
  for (const list of lists) {
    const mine = new Map<string, ReloadEntry[]>();
    for (const r of list) {
      const key = `${r.version}|${r.ok}|${r.error ?? ''}`;
      mine.set(key, [...(mine.get(key) ?? []), r]);
    }
    for (const [key, entries] of mine) if (entries.length > (best.get(key)?.length ?? 0)) best.set(key, entries);
  }
  return [...best.values()]
    .flat()
    .sort((a, b) => b.time.localeCompare(a.time))
    .slice(0, MAX_RELOADS);
}

/**
 * The raw data of several processes as one: counts, histogram buckets, series (aligned on the newest reading's
 * second), decisions, cache outcomes and L4 sessions (open and closed per listener) summed; reloads merged.
 */
export function mergeDashboardRaw(raws: readonly DashboardRaw[]): DashboardRaw {
  if (raws.length === 1) return raws[0]!;
  const now = Math.max(...raws.map((r) => r.now));
  const second = Math.floor(now / 1000);
  const routes = new Map<string, { requests: number; errors: number; histogram: number[]; series: number[] }>();
  const l4 = new Map<string, L4Row>();
  for (const raw of raws) {
    // A process read a second earlier than the newest: its series shifts left by the difference.
    const shift = second - Math.floor(raw.now / 1000);
    for (const r of raw.routes) {
      let sum = routes.get(r.route);
      if (sum === undefined) {
        sum = {
          requests: 0,
          errors: 0,
          histogram: new Array<number>(NB).fill(0),
          series: new Array<number>(SERIES_SECONDS).fill(0),
        };
        routes.set(r.route, sum);
      }
      sum.requests += r.requests;
      sum.errors += r.errors;
      for (let b = 0; b < NB; b++) sum.histogram[b]! += r.histogram[b] ?? 0;
      for (let i = shift; i < SERIES_SECONDS; i++) sum.series[i - shift]! += r.series[i] ?? 0;
    }
    for (const s of raw.l4) {
      const sum = l4.get(s.listener);
      l4.set(
        s.listener,
        sum === undefined
          ? { ...s }
          : {
              listener: s.listener,
              protocol: sum.protocol,
              open: sum.open + s.open,
              closed: sum.closed + s.closed,
              errors: sum.errors + s.errors,
              bytesIn: sum.bytesIn + s.bytesIn,
              bytesOut: sum.bytesOut + s.bytesOut,
            },
      );
    }
  }
  return {
    now,
    routes: [...routes].map(([route, r]) => ({ route, ...r })),
    rateLimits: {
      byRoute: sumDecisions(raws.map((r) => r.rateLimits.byRoute)),
      byConsumer: sumDecisions(raws.map((r) => r.rateLimits.byConsumer)),
    },
    cache: {
      hits: raws.reduce((n, r) => n + r.cache.hits, 0),
      misses: raws.reduce((n, r) => n + r.cache.misses, 0),
    },
    reloads: mergeReloads(raws.map((r) => r.reloads)),
    l4: [...l4.values()],
  };
}

/** The upper bound of the bucket holding the q-th quantile (the last finite bound for the overflow bucket). */
function percentile(histogram: readonly number[], total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < NB; b++) {
    seen += histogram[b] ?? 0;
    if (seen >= rank) return Number.isFinite(LATENCY_BOUNDS_MS[b]) ? LATENCY_BOUNDS_MS[b]! : LATENCY_BOUNDS_MS[NB - 2]!;
  }
  return null;
}

/** What the page shows, from one process's raw data or the merge of several. */
export function summarizeDashboard(raw: DashboardRaw): DashboardSummary {
  const routes = raw.routes
    .filter((r) => r.requests > 0)
    .map((r): RouteSummary => {
      const recent = r.series.slice(-RATE_SECONDS).reduce((n, x) => n + x, 0);
      return {
        route: r.route,
        rps: Math.round((recent / RATE_SECONDS) * 10) / 10,
        requests: r.requests,
        errorRate: r.errors / r.requests,
        p50Ms: percentile(r.histogram, r.requests, 0.5),
        p99Ms: percentile(r.histogram, r.requests, 0.99),
        series: r.series,
      };
    })
    .sort((a, b) => a.route.localeCompare(b.route));
  const decisions = (list: readonly DecisionCount[]): DecisionCount[] =>
    list.filter((d) => d.allowed + d.limited > 0).sort((a, b) => b.limited - a.limited || a.key.localeCompare(b.key));
  const { hits, misses } = raw.cache;
  return {
    time: new Date(raw.now).toISOString(),
    windowSeconds: WINDOW_SECONDS,
    routes,
    rateLimits: { byRoute: decisions(raw.rateLimits.byRoute), byConsumer: decisions(raw.rateLimits.byConsumer) },
    cache: { hits, misses, hitRatio: hits + misses > 0 ? hits / (hits + misses) : null },
    reloads: raw.reloads,
    l4: raw.l4,
  };
}
