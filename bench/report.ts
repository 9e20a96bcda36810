// Turning per-round samples into per-target summaries and markdown tables.

export interface Sample {
  readonly target: string;
  readonly round: number;
  readonly url: string;
  readonly reqPerSec?: number;
  readonly requests?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly errors?: number;
  /** The part of `errors` that is wrk's timeouts: responses slower than 2 s, left out of p50/p99. */
  readonly timeouts?: number;
  /** CPU% of the target's process tree over the wrk window (100 = one core); for direct, the backend's. */
  readonly cpuPercent?: number;
  /** VmHWM summed over the target's process tree during the window (whole-run peak if the kernel refused the reset). */
  readonly peakRssBytes?: number;
  readonly backendCpuPercent?: number;
  /** CPU% of the target's helper process (the redis-server of turnpike-gateway-redis), not in cpuPercent. */
  readonly sidecarCpuPercent?: number;
  /** CPU% used by processes outside the bench during the window (another user's tests on a shared machine). */
  readonly foreignCpuPercent?: number;
  readonly failure?: string;
  readonly raw: string;
}

export interface Summary {
  readonly target: string;
  readonly rounds: number;
  readonly failedRounds: number;
  readonly reqPerSec?: number;
  /** Median over rounds of req/s ÷ the baseline's req/s in the same round. */
  readonly ratio?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly errors?: number;
  readonly timeouts?: number;
  readonly peakRssBytes?: number;
  readonly cpuPercent?: number;
  /** req/s ÷ cores used (CPU% / 100), median over rounds. */
  readonly reqPerCore?: number;
  /** Median over rounds of req/s per core ÷ the baseline's in the same round. */
  readonly perCoreRatio?: number;
  readonly backendCpuPercent?: number;
  readonly sidecarCpuPercent?: number;
  readonly skipped?: string;
}

export function median(values: readonly (number | undefined)[]): number | undefined {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1]! + xs[mid]!) / 2;
}

function max(values: readonly (number | undefined)[]): number | undefined {
  const xs = values.filter((v): v is number => v !== undefined);
  return xs.length ? Math.max(...xs) : undefined;
}

export function perCore(s: Sample): number | undefined {
  if (s.reqPerSec === undefined || !s.cpuPercent || s.cpuPercent <= 0) return undefined;
  return s.reqPerSec / (s.cpuPercent / 100);
}

const div = (a?: number, b?: number) => (a === undefined || !b ? undefined : a / b);

/**
 * Medians over rounds, except errors (summed: one error in any round matters) and peak RSS (max).
 * Ratios are taken round by round against `baseline` before the median, so drift between rounds cancels.
 */
export function summarize(
  targets: readonly string[],
  samples: readonly Sample[],
  skipped: ReadonlyMap<string, string>,
  baseline: string,
): Summary[] {
  const ok = samples.filter((s) => !s.failure);
  const baseByRound = new Map(ok.filter((s) => s.target === baseline).map((s) => [s.round, s]));
  return targets.map((t): Summary => {
    const mine = samples.filter((s) => s.target === t);
    const good = mine.filter((s) => !s.failure);
    return {
      target: t,
      rounds: good.length,
      failedRounds: mine.length - good.length,
      reqPerSec: median(good.map((s) => s.reqPerSec)),
      ratio: median(good.map((s) => div(s.reqPerSec, baseByRound.get(s.round)?.reqPerSec))),
      p50Ms: median(good.map((s) => s.p50Ms)),
      p99Ms: median(good.map((s) => s.p99Ms)),
      errors: good.length ? good.reduce((n, s) => n + (s.errors ?? 0), 0) : undefined,
      timeouts: good.length ? good.reduce((n, s) => n + (s.timeouts ?? 0), 0) : undefined,
      peakRssBytes: max(good.map((s) => s.peakRssBytes)),
      cpuPercent: median(good.map((s) => s.cpuPercent)),
      reqPerCore: median(good.map(perCore)),
      perCoreRatio: median(
        good.map((s) => {
          const b = baseByRound.get(s.round);
          return div(perCore(s), b && perCore(b));
        }),
      ),
      backendCpuPercent: median(good.map((s) => s.backendCpuPercent)),
      sidecarCpuPercent: median(good.map((s) => s.sidecarCpuPercent)),
      skipped: skipped.get(t),
    };
  });
}

const dash = '–';
export const fmt = {
  int: (n?: number) => (n === undefined ? dash : Math.round(n).toLocaleString('en-US')),
  ratio: (n?: number) => (n === undefined ? dash : `${n.toFixed(2)}×`),
  ms: (n?: number) => (n === undefined ? dash : n < 10 ? `${n.toFixed(2)} ms` : `${n.toFixed(1)} ms`),
  mb: (n?: number) => (n === undefined ? dash : `${(n / 1024 / 1024).toFixed(1)} MiB`),
  pct: (n?: number) => (n === undefined ? dash : `${Math.round(n)}%`),
};

/** A route compared with the bare `turnpike` row: its plugin stack, and whether that comparison is a cost held to
 *  the budget (the gateway cases) or a gain (the cache answering every request itself). */
export interface Stack {
  readonly stack: string;
  readonly expect?: 'cost' | 'gain';
  /** A cost's own budget (tracing: 2 %); the gateway stack's otherwise. */
  readonly budget?: Budget;
  /** The row compared with, when not the bare `turnpike` (metrics on vs off: turnpike-gateway). */
  readonly versus?: string;
}

export interface Budget {
  readonly maxThroughputLoss: number;
  /** The loss is judged on req/s per core (CPU cost) rather than req/s. */
  readonly perCore?: boolean;
  readonly maxP99Ratio: number;
}

/**
 * `stacks`: the gateway cases (target → its plugin stack); each gets a line on its cost over (or, for `gain`, its
 * gain on) the bare `turnpike` row of the same table.
 */
export function markdownTable(
  title: string,
  rows: readonly Summary[],
  baseline: string,
  samples: readonly Sample[] = [],
  stacks: ReadonlyMap<string, Stack> = new Map([['turnpike-gateway', { stack: 'headers + rewrite plugins' }]]),
): string {
  const failures = samples.filter((s) => s.failure);
  const lines = [
    `### ${title}`,
    '',
    `| target | req/s | × ${baseline} | p50 | p99 | peak RSS | CPU % | req/s per core | per core × ${baseline} | errors | backend CPU % |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.target} | skipped | ${Array(9).fill(dash).join(' | ')} |`);
      notes.push(`${r.target} skipped: ${r.skipped}`);
      continue;
    }
    if (r.failedRounds) {
      const why = [...new Set(failures.filter((s) => s.target === r.target).map((s) => s.failure))].join('; ');
      const rest = r.rounds
        ? `its numbers are from the other ${r.rounds === 1 ? 'round' : `${r.rounds} rounds`}`
        : 'no numbers';
      notes.push(`${r.target}: ${r.failedRounds} of ${r.rounds + r.failedRounds} rounds failed — ${why}; ${rest}`);
    }
    lines.push(
      `| ${r.target} | ${fmt.int(r.reqPerSec)} | ${fmt.ratio(r.ratio)} | ${fmt.ms(r.p50Ms)} | ${fmt.ms(r.p99Ms)} | ` +
        `${fmt.mb(r.peakRssBytes)} | ${fmt.pct(r.cpuPercent)} | ${fmt.int(r.reqPerCore)} | ${fmt.ratio(r.perCoreRatio)} | ` +
        `${r.errors === undefined ? dash : r.errors} | ${fmt.pct(r.backendCpuPercent)} |`,
    );
  }
  const timedOut = rows.filter((r) => !r.skipped && r.timeouts);
  if (timedOut.length) {
    notes.push(
      `errors that are wrk timeouts (a response slower than 2 s; such responses are missing from p50/p99): ` +
        timedOut.map((r) => `${r.target} ${r.timeouts}`).join(', '),
    );
  }
  const bare = rows.find((r) => r.target === 'turnpike');
  for (const [target, s] of stacks) {
    const gw = rows.find((r) => r.target === target);
    const base = s.versus === undefined ? bare : rows.find((r) => r.target === s.versus);
    if (base?.reqPerSec && gw?.reqPerSec && !base.skipped && !gw.skipped) {
      if (s.versus !== undefined) notes.push(metricsCost(base, gw));
      else notes.push(s.expect === 'gain' ? stackGain(base, gw, s.stack) : gatewayCost(base, gw, s.stack, s.budget));
    }
  }
  if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

/** The performance issue's budget for the full gateway stack over the bare route. */
export const GATEWAY_BUDGET: Budget = { maxThroughputLoss: 0.15, maxP99Ratio: 1.25 };

const signed = (n: number, digits: number) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(digits)}`;
const pct = (a?: number, b?: number) => (a === undefined || !b ? dash : `${signed((a / b - 1) * 100, 1)}%`);
const p99Delta = (bare: Summary, gw: Summary) =>
  bare.p99Ms !== undefined && gw.p99Ms !== undefined && bare.p99Ms > 0
    ? `${signed(gw.p99Ms - bare.p99Ms, 2)} ms (${(gw.p99Ms / bare.p99Ms).toFixed(2)}×)`
    : dash;

/** The cost of a gateway stack (plugins) over the bare route, in the same process and run, against the budget. */
export function gatewayCost(
  bare: Summary,
  gw: Summary,
  stack = 'headers + rewrite plugins',
  budget: Budget = GATEWAY_BUDGET,
): string {
  const hasP99 = bare.p99Ms !== undefined && gw.p99Ms !== undefined && bare.p99Ms > 0;
  const p99 = p99Delta(bare, gw);
  const over: string[] = [];
  const [b, g] = budget.perCore ? [bare.reqPerCore, gw.reqPerCore] : [bare.reqPerSec, gw.reqPerSec];
  const measure = budget.perCore ? 'req/s per core' : 'req/s';
  if (b && g !== undefined && g < b * (1 - budget.maxThroughputLoss)) over.push(measure);
  if (hasP99 && gw.p99Ms! > bare.p99Ms! * budget.maxP99Ratio) over.push('p99');
  const verdict = over.length ? `OVER the budget on ${over.join(' and ')}` : 'within the budget';
  const sidecar =
    gw.sidecarCpuPercent !== undefined ? `; redis-server CPU ${fmt.pct(gw.sidecarCpuPercent)} besides` : '';
  return (
    `${gw.target} — gateway stack (${stack}) vs bare Turnpike route: req/s ${pct(gw.reqPerSec, bare.reqPerSec)}, ` +
    `req/s per core ${pct(gw.reqPerCore, bare.reqPerCore)}, p99 ${p99}${sidecar} — ${verdict} ` +
    `(≤ ${budget.maxThroughputLoss * 100} % ${measure}, p99 ≤ ${budget.maxP99Ratio}×)`
  );
}

/** The metrics issue's budget: metrics on may cost at most this share of the gateway route's req/s per core. */
export const METRICS_BUDGET = { maxPerCoreLoss: 0.05 };

/** Metrics on (`gw`) vs off (`base`, the same gateway route in another process of the same run). */
export function metricsCost(base: Summary, gw: Summary): string {
  const over =
    base.reqPerCore !== undefined &&
    gw.reqPerCore !== undefined &&
    gw.reqPerCore < base.reqPerCore * (1 - METRICS_BUDGET.maxPerCoreLoss);
  return (
    `${gw.target} — metrics on vs off (${base.target}): req/s ${pct(gw.reqPerSec, base.reqPerSec)}, ` +
    `req/s per core ${pct(gw.reqPerCore, base.reqPerCore)}, p99 ${p99Delta(base, gw)} — ` +
    `${over ? 'OVER' : 'within'} the budget (≤ ${METRICS_BUDGET.maxPerCoreLoss * 100} % req/s per core)`
  );
}

/**
 * A stack that should beat the bare route (the cache, every request a hit, against the same body fetched from the
 * backend through the bare route): how much faster, or a loud SLOWER when a hit costs more than the round trip.
 */
export function stackGain(bare: Summary, gw: Summary, stack: string): string {
  const times = bare.reqPerSec && gw.reqPerSec !== undefined ? ` (${(gw.reqPerSec / bare.reqPerSec).toFixed(2)}×)` : '';
  const verdict =
    gw.reqPerSec !== undefined && bare.reqPerSec !== undefined && gw.reqPerSec < bare.reqPerSec
      ? 'SLOWER than fetching from the backend: a hit should never lose to the proxied request'
      : 'a gain over fetching from the backend';
  return (
    `${gw.target} — ${stack}, vs the same response from the backend through the bare Turnpike route: ` +
    `req/s ${pct(gw.reqPerSec, bare.reqPerSec)}${times}, req/s per core ${pct(gw.reqPerCore, bare.reqPerCore)}, ` +
    `p99 ${p99Delta(bare, gw)} — ${verdict}`
  );
}

/** Median CPU % of other processes (100 = one core) above which a run is flagged: on a small machine the bench
 *  itself keeps every core busy, so what others take comes out of the measured processes, unevenly. */
export const FOREIGN_CPU_WARN = 15;

export interface ForeignLoad {
  readonly median?: number;
  readonly max?: number;
  readonly busy: boolean;
  readonly line?: string;
}

/** How much CPU processes outside the bench took during the measured windows, as one line of the report. */
export function foreignLoad(samples: readonly Sample[]): ForeignLoad {
  const xs = samples.filter((s) => s.round > 0).map((s) => s.foreignCpuPercent);
  const med = median(xs);
  const top = max(xs);
  if (med === undefined) return { busy: false };
  const busy = med > FOREIGN_CPU_WARN;
  return {
    median: med,
    max: top,
    busy,
    line:
      `Other processes on this machine used a median ${fmt.pct(med)} CPU (max ${fmt.pct(top)}) during the measured windows` +
      (busy
        ? ` — more than ${FOREIGN_CPU_WARN}%: the machine was shared, the figures are noisy; repeat the run when it is quiet.`
        : '.'),
  };
}
