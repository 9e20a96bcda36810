// What every scenario beside the plain one shares: the processes it measures ("contenders"), interleaved rounds of
// one load generator against each with its process tree's CPU and peak memory sampled around the window, and the
// shape of what a scenario hands back to bench/run.ts.
import { truncateSync } from 'node:fs';
import type { Child } from '../children.ts';
import { cpuWindow, foreignCpuWindow, peakRssBytes, resetPeakRss } from '../procstat.ts';
import type { Sample, Summary } from '../report.ts';

/** One load window's figures, whatever the load generator (wrk, h2load, the stream client). */
export interface LoadResult {
  readonly reqPerSec: number;
  readonly requests: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly errors: number;
  readonly timeouts?: number;
}

export interface LoadRun {
  readonly result?: LoadResult;
  readonly failure?: string;
  readonly raw: string;
}

export interface Contender {
  readonly name: string;
  /** The process whose tree is measured for CPU and memory. */
  readonly child: Child;
  /** A helper whose CPU is sampled apart (the redis-server of a gateway route). */
  readonly sidecar?: Child;
  /** Truncated after each window so a long run does not fill the disk. */
  readonly accessLog?: string;
  /** One load window of about `seconds`. */
  run(seconds: number): Promise<LoadRun>;
}

export interface RoundsPlan {
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly seconds: number;
}

/** What the scenario's processes share with the plain case: the backend, the temp dir, the plan. */
export interface ScenarioContext {
  readonly tmp: string;
  readonly backendPort: number;
  readonly backend: Child;
  readonly quick: boolean;
  readonly plan: RoundsPlan & { readonly connections: readonly number[]; readonly bodies: readonly string[] };
  /** From the plain case of the same run, when it ran: Turnpike's req/s per core × nginx-1w, by `<body>·<conns>`
   *  (the https scenarios hold their own ratio to nginx against it: the 10 %). */
  readonly plainPerCore?: ReadonlyMap<string, number>;
}

export interface ScenarioOutcome {
  /** Markdown for the report: the scenario's heading, what it runs, its tables and notes. */
  readonly markdown: string;
  /** For the JSON results file. */
  readonly data: unknown;
  /** Charted like the plain case's tables (ratio to `baseline`), when the scenario has req/s rows. */
  readonly charts?: readonly { readonly title: string; readonly rows: readonly Summary[]; readonly baseline: string }[];
  /** Every measured window, for the run's line on other processes' CPU. */
  readonly samples: readonly Sample[];
  /** A Turnpike row or the baseline failed: the run exits 1. */
  readonly failed: boolean;
}

async function window(c: Contender, seconds: number, round: number, backend?: Child): Promise<Sample> {
  if (c.child.hasExited())
    return { target: c.name, round, url: '', failure: `process exited: ${c.child.tail().slice(-300)}`, raw: '' };
  resetPeakRss(c.child.pid);
  const cpu = cpuWindow(c.child.pid);
  const backendCpu = backend ? cpuWindow(backend.pid) : undefined;
  const sidecarCpu = c.sidecar && !c.sidecar.hasExited() ? cpuWindow(c.sidecar.pid) : undefined;
  const foreignCpu = foreignCpuWindow();
  const run = await c.run(seconds);
  const foreignCpuPercent = foreignCpu();
  const cpuPercent = cpu();
  const backendCpuPercent = backendCpu?.();
  const sidecarCpuPercent = sidecarCpu?.();
  const peak = peakRssBytes(c.child.pid);
  if (c.accessLog) {
    try {
      truncateSync(c.accessLog);
    } catch {
      // not written yet
    }
  }
  const r = run.result;
  return {
    target: c.name,
    round,
    url: '',
    raw: run.raw,
    failure: run.failure,
    reqPerSec: r?.reqPerSec,
    requests: r?.requests,
    p50Ms: r?.p50Ms,
    p99Ms: r?.p99Ms,
    errors: r?.errors,
    timeouts: r?.timeouts,
    cpuPercent,
    peakRssBytes: peak,
    backendCpuPercent,
    sidecarCpuPercent,
    foreignCpuPercent,
  };
}

/** A warm-up window per contender, then `rounds` rounds whose order rotates, so no contender always runs first. */
export async function interleave(
  label: string,
  contenders: readonly Contender[],
  plan: RoundsPlan,
  backend?: Child,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const c of contenders) {
    if (plan.warmupSeconds <= 0) break;
    const warm = await window(c, plan.warmupSeconds, 0, backend);
    if (warm.failure) console.error(`${label} warm-up ${c.name} failed: ${warm.failure}`);
  }
  for (let round = 1; round <= plan.rounds; round++) {
    const order = contenders.map((_, i) => contenders[(i + round - 1) % contenders.length]!);
    for (const c of order) {
      const s = await window(c, plan.seconds, round, backend);
      samples.push(s);
      const what = s.failure
        ? `FAILED: ${s.failure}`
        : `${Math.round(s.reqPerSec ?? 0).toLocaleString('en-US')}/s, p99 ${s.p99Ms?.toFixed(2) ?? '–'} ms, CPU ${Math.round(s.cpuPercent ?? 0)}%, errors ${s.errors}`;
      console.error(`${label} round ${round}/${plan.rounds} ${c.name.padEnd(22)} ${what}`);
    }
  }
  return samples;
}

/** Starts every contender concurrently; one that fails to start is skipped with a one-line reason. */
export async function startAll(
  starters: Readonly<Record<string, () => Promise<Contender>>>,
): Promise<{ contenders: Contender[]; skipped: Map<string, string> }> {
  const skipped = new Map<string, string>();
  const started = await Promise.all(
    Object.entries(starters).map(async ([name, start]) => {
      try {
        return await start();
      } catch (err) {
        skipped.set(name, (err as Error).message.split('\n')[0]!.slice(0, 400));
        return undefined;
      }
    }),
  );
  return { contenders: started.filter((c): c is Contender => c !== undefined), skipped };
}

/** Stops the contenders' processes (each once, however many contenders share it). */
export async function stopAll(contenders: readonly Contender[], keep: readonly Child[] = []): Promise<void> {
  const children = [...new Set(contenders.map((c) => c.child))].filter((c) => !keep.includes(c));
  await Promise.all(children.map((c) => c.stop(3000)));
}
