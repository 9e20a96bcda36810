// `npm run bench`: wrk against the backend directly and through Turnpike, side by side, on loopback.
// Full run: 3 s warm-up per target, then 3 rounds of 10 s with the target order rotating each round.
// `--quick`: 1 s warm-up, 1 round of 3 s, 50 connections only (under a minute).
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { atExit, startChild, type Child } from './children.ts';
import { cpuWindow, peakRssBytes, resetPeakRss } from './procstat.ts';
import { markdownTable, summarize, type Sample, type Summary } from './report.ts';
import { CLI, startTurnpike, type Turnpike } from './turnpike.ts';
import { ensureWrk, runWrk, wrkVersion } from './wrk.ts';

const ALL_TARGETS = ['direct', 'turnpike', 'gateway'] as const;
type Target = (typeof ALL_TARGETS)[number];
const BODIES = ['100b', '64k'] as const;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: ALL_TARGETS.join(',') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--targets ${ALL_TARGETS.join(',')}]
  --quick     1 s warm-up, 1 round of 3 s, 50 connections only
  --targets   comma-separated subset of targets to measure (direct is always included as the baseline)`);
  process.exit(0);
}

const plan = args.quick
  ? { warmupSeconds: 1, rounds: 1, seconds: 3, connections: [50] }
  : { warmupSeconds: 3, rounds: 3, seconds: 10, connections: [50, 256] };

const requested = new Set(args.targets.split(',').map((t) => t.trim()).filter(Boolean));
for (const t of requested) {
  if (!(ALL_TARGETS as readonly string[]).includes(t)) {
    console.error(`unknown target "${t}", expected some of: ${ALL_TARGETS.join(', ')}`);
    process.exit(2);
  }
}
const targets: Target[] = ALL_TARGETS.filter((t) => t === 'direct' || requested.has(t));
const needsTurnpike = targets.some((t) => t !== 'direct');

if (needsTurnpike && !existsSync(CLI)) {
  console.error(`${relative(process.cwd(), CLI)} not found — run \`npm run build\` first (or pass --targets direct)`);
  process.exit(1);
}

const started = new Date();
const command = ['node', 'bench/run.ts', ...process.argv.slice(2)].join(' ');
const cpus = os.cpus();
console.log('# Turnpike benchmark\n');
console.log(`- date: ${started.toISOString()}`);
console.log(`- command: ${command}`);

if (!(await ensureWrk())) {
  console.error('wrk is required: apt-get install -y wrk');
  process.exit(1);
}
const env = {
  node: process.version,
  wrk: wrkVersion(),
  cpu: `${cpus.length} × ${cpus[0]?.model ?? 'unknown'}`,
  os: `${os.type()} ${os.release()}`,
};
console.log(`- node ${env.node} · ${env.wrk} · ${env.cpu} · ${env.os}`);
console.log(
  `- plan: warm-up ${plan.warmupSeconds} s per target, ${plan.rounds} round(s) of ${plan.seconds} s, ` +
    `wrk -t2 -c{${plan.connections.join(',')}}, targets ${targets.join(', ')}`,
);
console.log('- wrk, the backend and Turnpike share this machine\'s cores; compare ratios, not absolute numbers\n');

const tmp = mkdtempSync(join(os.tmpdir(), 'turnpike-bench-'));
atExit(() => rmSync(tmp, { recursive: true, force: true }));

// --- processes under test ---------------------------------------------------------------------------
const backendScript = fileURLToPath(new URL('./backend.ts', import.meta.url));
const backend: Child = startChild(process.execPath, [backendScript, '--port', '0']);
const backendPort = Number((await backend.waitForOutput(/^(\d+)$/m, 10_000))[1]);

const skipped = new Map<string, string>();
let turnpike: Turnpike | undefined;
if (needsTurnpike) {
  try {
    turnpike = await startTurnpike(tmp, backendPort, targets.includes('gateway'));
    if (turnpike.gatewaySkipped && targets.includes('gateway')) skipped.set('gateway', turnpike.gatewaySkipped);
  } catch (err) {
    for (const t of targets) if (t !== 'direct') skipped.set(t, `turnpike did not start: ${(err as Error).message}`);
  }
}
for (const [t, why] of skipped) console.error(`${t}: skipped — ${why}`);
const active = targets.filter((t) => !skipped.has(t));

function urlFor(target: Target, body: string): string {
  if (target === 'direct') return `http://127.0.0.1:${backendPort}/${body}`;
  return `http://127.0.0.1:${turnpike!.port}/${target === 'gateway' ? 'api/' : ''}${body}`;
}

// Per-window peak RSS needs the kernel to let us reset VmHWM; otherwise it is the peak so far.
let rssPerWindow = true;

/** One wrk window, with the Turnpike process's CPU and peak memory sampled around it. */
async function measure(target: Target, body: string, connections: number, seconds: number, round: number): Promise<Sample> {
  const url = urlFor(target, body);
  const tpPid = target === 'direct' ? undefined : turnpike!.child.pid;
  if (tpPid !== undefined && turnpike!.child.hasExited()) {
    return { target, round, url, failure: `turnpike exited (${await turnpike!.child.exited}): ${turnpike!.child.tail().slice(-300)}`, raw: '' };
  }
  if (tpPid !== undefined) rssPerWindow = resetPeakRss(tpPid) && rssPerWindow;
  const tpCpu = tpPid === undefined ? undefined : cpuWindow(tpPid);
  const backendCpu = cpuWindow(backend.pid);
  const run = await runWrk({ url, seconds, connections });
  const cpuPercent = tpCpu?.();
  const backendCpuPercent = backendCpu();
  const peak = tpPid === undefined ? undefined : peakRssBytes(tpPid);
  if (turnpike) {
    try {
      truncateSync(turnpike.accessLog); // keeps a full run from filling the disk with access log lines
    } catch {
      // not created yet, or logging elsewhere
    }
  }
  const r = run.result;
  return {
    target, round, url, raw: run.raw, failure: run.failure,
    reqPerSec: r?.reqPerSec, requests: r?.requests, p50Ms: r?.p50Ms, p99Ms: r?.p99Ms, errors: r?.errors,
    cpuPercent, peakRssBytes: peak, backendCpuPercent,
  };
}

function progress(label: string, s: Sample): void {
  const what = s.failure
    ? `FAILED: ${s.failure}`
    : `${Math.round(s.reqPerSec ?? 0).toLocaleString('en-US')} req/s, p99 ${s.p99Ms?.toFixed(2)} ms, errors ${s.errors}`;
  console.error(`${label} ${s.target.padEnd(8)} ${what}`);
}

// --- the run --------------------------------------------------------------------------------------------
interface CaseResult {
  readonly body: string;
  readonly connections: number;
  readonly samples: Sample[];
  summary: Summary[];
}
const cases: CaseResult[] = [];

for (const connections of plan.connections) {
  for (const body of BODIES) {
    const label = `[${body} · ${connections} conns]`;
    const samples: Sample[] = [];
    for (const t of active) {
      const warm = await measure(t, body, connections, plan.warmupSeconds, 0);
      if (warm.failure) console.error(`${label} warm-up ${t} failed: ${warm.failure}`);
    }
    for (let round = 1; round <= plan.rounds; round++) {
      // Rotate the order so no target always runs first (or always right after another one).
      const order = active.map((_, i) => active[(i + round - 1) % active.length]!);
      for (const t of order) {
        const s = await measure(t, body, connections, plan.seconds, round);
        samples.push(s);
        progress(`${label} round ${round}/${plan.rounds}`, s);
      }
    }
    cases.push({ body, connections, samples, summary: summarize(targets, samples, skipped) });
  }
}

// --- report ---------------------------------------------------------------------------------------------
const finalPeak = turnpike && !turnpike.child.hasExited() ? peakRssBytes(turnpike.child.pid) : undefined;
const runPeak = Math.max(finalPeak ?? 0, ...cases.flatMap((c) => c.samples.map((s) => s.peakRssBytes ?? 0)));

console.log('');
for (const c of cases) {
  console.log(markdownTable(`${c.body} body, ${c.connections} connections`, c.summary));
  console.log('');
}
const medianNote = plan.rounds > 1 ? `medians over ${plan.rounds} rounds; errors summed over rounds` : 'single round';
console.log(`${medianNote}; CPU % and peak RSS are the Turnpike process during each wrk window (100% = one core)`);
if (!rssPerWindow) console.log('note: the kernel refused to reset VmHWM, so peak RSS is the peak since Turnpike started');
if (turnpike) console.log(`Turnpike peak RSS over the whole run: ${(runPeak / 1024 / 1024).toFixed(1)} MiB`);

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const outFile = join(resultsDir, `${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
writeFileSync(
  outFile,
  JSON.stringify(
    { date: started.toISOString(), command, env, plan, targets, skipped: Object.fromEntries(skipped), rssPerWindow, turnpikePeakRssBytes: turnpike ? runPeak : undefined, cases },
    null,
    2,
  ) + '\n',
);
console.log(`raw results: ${outFile}`);

await turnpike?.child.stop(3000);
await backend.stop(1000);
const anyFailure = skipped.size > 0 || cases.some((c) => c.samples.some((s) => s.failure));
process.exit(anyFailure ? 1 : 0);
