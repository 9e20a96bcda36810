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
  /** CPU% of the Turnpike process over the wrk window (100 = one core). */
  readonly cpuPercent?: number;
  /** VmHWM of the Turnpike process during the window (whole-run peak if the kernel refused the reset). */
  readonly peakRssBytes?: number;
  readonly backendCpuPercent?: number;
  readonly failure?: string;
  readonly raw: string;
}

export interface Summary {
  readonly target: string;
  readonly rounds: number;
  readonly failedRounds: number;
  readonly reqPerSec?: number;
  readonly ratioToDirect?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly errors?: number;
  readonly peakRssBytes?: number;
  readonly cpuPercent?: number;
  readonly backendCpuPercent?: number;
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

/** Medians over rounds, except errors (summed: one error in any round matters) and peak RSS (max). */
export function summarize(targets: readonly string[], samples: readonly Sample[], skipped: ReadonlyMap<string, string>): Summary[] {
  const base = (t: string): Summary => {
    const mine = samples.filter((s) => s.target === t);
    const ok = mine.filter((s) => !s.failure);
    return {
      target: t,
      rounds: ok.length,
      failedRounds: mine.length - ok.length,
      reqPerSec: median(ok.map((s) => s.reqPerSec)),
      p50Ms: median(ok.map((s) => s.p50Ms)),
      p99Ms: median(ok.map((s) => s.p99Ms)),
      errors: ok.length ? ok.reduce((n, s) => n + (s.errors ?? 0), 0) : undefined,
      peakRssBytes: max(ok.map((s) => s.peakRssBytes)),
      cpuPercent: median(ok.map((s) => s.cpuPercent)),
      backendCpuPercent: median(ok.map((s) => s.backendCpuPercent)),
      skipped: skipped.get(t),
    };
  };
  const rows = targets.map(base);
  const direct = rows.find((r) => r.target === 'direct')?.reqPerSec;
  return rows.map((r) => ({ ...r, ratioToDirect: direct && r.reqPerSec !== undefined ? r.reqPerSec / direct : undefined }));
}

const dash = '–';
const fmt = {
  int: (n?: number) => (n === undefined ? dash : Math.round(n).toLocaleString('en-US')),
  ratio: (n?: number) => (n === undefined ? dash : `${n.toFixed(2)}×`),
  ms: (n?: number) => (n === undefined ? dash : n < 10 ? `${n.toFixed(2)} ms` : `${n.toFixed(1)} ms`),
  mb: (n?: number) => (n === undefined ? dash : `${(n / 1024 / 1024).toFixed(1)} MiB`),
  pct: (n?: number) => (n === undefined ? dash : `${Math.round(n)}%`),
};

export function markdownTable(title: string, rows: readonly Summary[]): string {
  const lines = [
    `### ${title}`,
    '',
    '| target | req/s | ratio to direct | p50 | p99 | errors | peak RSS | CPU % |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.target} | skipped | ${dash} | ${dash} | ${dash} | ${dash} | ${dash} | ${dash} |`);
      notes.push(`${r.target} skipped: ${r.skipped}`);
      continue;
    }
    if (r.failedRounds) notes.push(`${r.target}: ${r.failedRounds} round(s) failed, see the JSON file`);
    lines.push(
      `| ${r.target} | ${fmt.int(r.reqPerSec)} | ${fmt.ratio(r.ratioToDirect)} | ${fmt.ms(r.p50Ms)} | ${fmt.ms(r.p99Ms)} | ` +
        `${r.errors === undefined ? dash : r.errors} | ${fmt.mb(r.peakRssBytes)} | ${fmt.pct(r.cpuPercent)} |`,
    );
  }
  const direct = rows.find((r) => r.target === 'direct');
  if (direct?.backendCpuPercent !== undefined) notes.push(`backend CPU during direct: ${fmt.pct(direct.backendCpuPercent)}`);
  if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`));
  return lines.join('\n');
}
