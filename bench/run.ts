// `npm run bench`: wrk against the backend directly, through Turnpike, and through the proxies people would
// pick instead (nginx, HAProxy, Node gateways), side by side on loopback behind the same backend.
// Full run: 3 s warm-up per target and case, then 3 rounds of 10 s with the target order rotating each round.
// `--quick`: 1 s warm-up, 1 round of 2 s, 50 connections, 100 B body only (under a minute).
import { existsSync, mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { ratioChart } from './chart.ts';
import { removeOnExit, startChild, type Child } from './children.ts';
import { startNginxBackend } from './nginx.ts';
import { ensurePeers, peerVersions } from './peers.ts';
import { cpuWindow, peakRssBytes, resetPeakRss } from './procstat.ts';
import { markdownTable, summarize, type Sample, type Summary } from './report.ts';
import { TOOLS, ensureTools, toolPath, toolVersion, type ToolName } from './system.ts';
import { ALIASES, BASELINE, TARGETS, startTargets, type Running } from './targets.ts';
import { CLI } from './turnpike.ts';
import { runWrk } from './wrk.ts';

const NAMES = TARGETS.map((t) => t.name);
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: NAMES.join(',') },
    backend: { type: 'string', default: 'nginx' },
    connections: { type: 'string' },
    bodies: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--targets a,b,c] [--backend nginx|node]
  --quick     1 s warm-up, 1 round of 2 s, 50 connections, 100 B body only (a smoke check, under a minute)
  --targets   subset of: ${NAMES.join(', ')}
              (direct and ${BASELINE}, the baseline of every ratio, are always included)
  --backend   what serves /100b and /64k: nginx (default, static files) or node (bench/backend.ts)
  --connections 50,256   --bodies 100b,64k   only these cases (to look at one case while working on it)`);
  process.exit(0);
}
if (args.backend !== 'nginx' && args.backend !== 'node') {
  console.error(`--backend must be nginx or node, not "${args.backend}"`);
  process.exit(2);
}

const plan = args.quick
  ? { warmupSeconds: 1, rounds: 1, seconds: 2, connections: [50], bodies: ['100b'] }
  : { warmupSeconds: 3, rounds: 3, seconds: 10, connections: [50, 256], bodies: ['100b', '64k'] };

if (args.connections) plan.connections = args.connections.split(',').map(Number);
if (args.bodies) plan.bodies = args.bodies.split(',');
if (plan.connections.some((c) => !Number.isInteger(c) || c < 1) || plan.bodies.some((b) => b !== '100b' && b !== '64k')) {
  console.error('--connections takes whole numbers, --bodies 100b and/or 64k');
  process.exit(2);
}

const requested = new Set(args.targets.split(',').map((t) => ALIASES[t.trim()] ?? t.trim()).filter(Boolean));
for (const t of requested) {
  if (!NAMES.includes(t)) {
    console.error(`unknown target "${t}", expected some of: ${NAMES.join(', ')}`);
    process.exit(2);
  }
}
const targets = NAMES.filter((t) => t === 'direct' || t === BASELINE || requested.has(t));
const info = (name: string) => TARGETS.find((t) => t.name === name)!;

const started = new Date();
const t0 = performance.now();
const command = ['node', 'bench/run.ts', ...process.argv.slice(2)].join(' ');
const cpus = os.cpus();
console.log('# Turnpike benchmark\n');
console.log(`- date: ${started.toISOString()}`);
console.log(`- command: ${command}`);

// --- what the run needs: system tools, npm peers, the built CLI ------------------------------------------
const skippedUpFront = new Map<string, string>();
const tools = new Set<ToolName>(['wrk', ...targets.flatMap((t) => info(t).tools)]);
let backendKind = args.backend;
if (backendKind === 'nginx') tools.add('nginx');
const missing = await ensureTools([...tools]);
if (missing.has('wrk')) {
  console.error(missing.get('wrk'));
  process.exit(1);
}
for (const t of targets) {
  const lacking = info(t).tools.find((tool) => missing.has(tool));
  if (lacking) skippedUpFront.set(t, missing.get(lacking)!);
}
if (backendKind === 'nginx' && missing.has('nginx')) {
  console.error(`${missing.get('nginx')}; using the Node backend instead`);
  backendKind = 'node';
}
const peerPackages = [...new Set(targets.flatMap((t) => info(t).peers))];
const peerProblem = peerPackages.length ? await ensurePeers(peerPackages) : undefined;
if (peerProblem) for (const t of targets) if (info(t).peers.length) skippedUpFront.set(t, peerProblem);
if (!existsSync(CLI)) {
  for (const t of targets) {
    if (t.startsWith('turnpike')) skippedUpFront.set(t, `${relative(process.cwd(), CLI)} not found — run \`npm run build\` first`);
  }
}

const env = {
  node: process.version,
  wrk: toolVersion(TOOLS.wrk),
  nginx: toolPath(TOOLS.nginx) ? toolVersion(TOOLS.nginx) : 'not installed',
  haproxy: toolPath(TOOLS.haproxy) ? toolVersion(TOOLS.haproxy) : 'not installed',
  redis: targets.includes('turnpike-gateway-redis') && toolPath(TOOLS['redis-server'])
    ? toolVersion(TOOLS['redis-server']).replace(/\s+sha=.*$/, '')
    : undefined,
  peers: peerPackages.length ? peerVersions() : {},
  cpu: `${cpus.length} × ${cpus[0]?.model ?? 'unknown'}`,
  os: `${os.type()} ${os.release()}`,
  backend: backendKind,
};
console.log(`- node ${env.node} · ${env.wrk} · ${env.nginx} · ${env.haproxy}${env.redis ? ` · ${env.redis}` : ''} · ${env.cpu} · ${env.os}`);
if (peerPackages.length) console.log(`- peers: ${Object.entries(env.peers).map(([p, v]) => `${p} ${v}`).join(', ')}`);
console.log(
  `- plan: warm-up ${plan.warmupSeconds} s per target and case, ${plan.rounds} round(s) of ${plan.seconds} s in rotating order, ` +
    `wrk -t2 -c{${plan.connections.join(',')}} keep-alive, bodies ${plan.bodies.join(', ')}`,
);
console.log(`- wrk, the backend and every proxy share this machine's ${cpus.length} cores; compare ratios, not absolute numbers`);

const tmp = mkdtempSync(join(os.tmpdir(), 'turnpike-bench-'));
removeOnExit(tmp);

// --- processes under test ---------------------------------------------------------------------------
/** nginx serving static files (the default), or bench/backend.ts when asked for or when nginx fails. */
async function startBackend(): Promise<{ child: Child; port: number }> {
  if (backendKind === 'nginx') {
    const dir = join(tmp, 'backend');
    mkdirSync(dir);
    try {
      return await startNginxBackend(dir);
    } catch (err) {
      console.error(`the nginx backend did not start (${(err as Error).message}); using the Node backend instead`);
      backendKind = 'node';
    }
  }
  const child = startChild(process.execPath, [fileURLToPath(new URL('./backend.ts', import.meta.url)), '--port', '0'], { guard: true });
  return { child, port: Number((await child.waitForOutput(/^(\d+)$/m, 10_000))[1]) };
}
const { child: backend, port: backendPort } = await startBackend();
env.backend = backendKind;
const { running, skipped, helpers } = await startTargets(targets, { tmp, backendPort, backend }, skippedUpFront);
const active = targets.filter((t) => running.has(t));
const startupSeconds = (performance.now() - t0) / 1000;

console.log(`- backend: ${backendKind === 'nginx' ? 'nginx, 1 worker, static files of 100 B and 64 KiB, access_log off' : 'bench/backend.ts (node:http, buffers in memory)'}`);
console.log(`- targets (every Node one — Turnpike, the peers, node-limit — runs on this Node with ${NODE_FLAGS.join(' ')}):`);
for (const t of targets) console.log(`  - ${t}: ${info(t).describe}${skipped.has(t) ? ' — SKIPPED' : ''}`);
console.log(`- access logs: ${targets.filter((t) => info(t).accessLog).join(', ')} write one (nginx buffered: buffer=64k flush=1s); the others log nothing`);
console.log(`- started in ${startupSeconds.toFixed(1)} s\n`);
for (const [t, why] of skipped) console.error(`${t}: skipped — ${why}`);
if (!running.has(BASELINE)) console.error(`${BASELINE} is not running: ratio columns will be empty`);

// Per-window peak RSS needs the kernel to let us reset VmHWM; otherwise it is the peak so far.
let rssPerWindow = true;

/** One wrk window, with the target's process tree CPU and peak memory sampled around it. */
async function measure(r: Running, body: string, connections: number, seconds: number, round: number): Promise<Sample> {
  const url = `${r.base}${body}`;
  if (r.child.hasExited()) {
    return { target: r.name, round, url, failure: `process exited (${await r.child.exited}): ${r.child.tail().slice(-300)}`, raw: '' };
  }
  rssPerWindow = resetPeakRss(r.child.pid) && rssPerWindow;
  const cpu = cpuWindow(r.child.pid);
  const backendCpu = cpuWindow(backend.pid);
  const sidecarCpu = r.sidecar && !r.sidecar.hasExited() ? cpuWindow(r.sidecar.pid) : undefined;
  const run = await runWrk({ url, seconds, connections, headers: r.headers });
  const cpuPercent = cpu();
  const backendCpuPercent = backendCpu();
  const sidecarCpuPercent = sidecarCpu?.();
  const peak = peakRssBytes(r.child.pid);
  for (const other of running.values()) {
    try {
      if (other.accessLog) truncateSync(other.accessLog); // keeps a full run from filling the disk
    } catch {
      // not created yet
    }
  }
  const w = run.result;
  return {
    target: r.name, round, url, raw: run.raw, failure: run.failure,
    reqPerSec: w?.reqPerSec, requests: w?.requests, p50Ms: w?.p50Ms, p99Ms: w?.p99Ms, errors: w?.errors, timeouts: w?.socketErrors.timeout,
    cpuPercent, peakRssBytes: peak, backendCpuPercent, sidecarCpuPercent,
  };
}

function progress(label: string, s: Sample): void {
  const what = s.failure
    ? `FAILED: ${s.failure}`
    : `${Math.round(s.reqPerSec ?? 0).toLocaleString('en-US')} req/s, p99 ${s.p99Ms?.toFixed(2)} ms, CPU ${Math.round(s.cpuPercent ?? 0)}%, errors ${s.errors}`;
  console.error(`${label} ${s.target.padEnd(22)} ${what}`);
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
  for (const body of plan.bodies) {
    const label = `[${body} · ${connections} conns]`;
    const samples: Sample[] = [];
    for (const t of active) {
      const warm = await measure(running.get(t)!, body, connections, plan.warmupSeconds, 0);
      if (warm.failure) console.error(`${label} warm-up ${t} failed: ${warm.failure}`);
    }
    for (let round = 1; round <= plan.rounds; round++) {
      // Rotate the order so no target always runs first (or always right after another one).
      const order = active.map((_, i) => active[(i + round - 1) % active.length]!);
      for (const t of order) {
        const s = await measure(running.get(t)!, body, connections, plan.seconds, round);
        samples.push(s);
        progress(`${label} round ${round}/${plan.rounds}`, s);
      }
    }
    cases.push({ body, connections, samples, summary: summarize(targets, samples, skipped, BASELINE) });
  }
}

// --- report ---------------------------------------------------------------------------------------------
const tp = running.get('turnpike');
const turnpikeRunPeak = tp && !tp.child.hasExited() ? peakRssBytes(tp.child.pid) : undefined;

const stacks = new Map(TARGETS.filter((t) => t.stack).map((t) => [t.name, { stack: t.stack!, expect: t.expect }]));
console.log('');
for (const c of cases) {
  console.log(markdownTable(`${c.body} body, ${c.connections} connections`, c.summary, BASELINE, c.samples, stacks));
  console.log('');
}
const medianNote = plan.rounds > 1 ? `medians over ${plan.rounds} rounds; errors summed, peak RSS max over rounds` : 'single round';
console.log(`${medianNote}. × ${BASELINE}: ratio to ${BASELINE} in the same round (median of per-round ratios).`);
console.log(
  'CPU % and peak RSS: the target\'s whole process tree (nginx master + workers, Turnpike workers) during each wrk window, ' +
    '100% = one core; for direct they are the backend\'s own. req/s per core = req/s ÷ (CPU % / 100).',
);
if (running.has('turnpike-gateway-redis')) {
  console.log('The redis-server of turnpike-gateway-redis is not in that row\'s CPU % or req/s per core; its own CPU % is in the cost line.');
}
if (!rssPerWindow) console.log('note: the kernel refused to reset VmHWM, so peak RSS is the peak since each process started');
if (turnpikeRunPeak) console.log(`Turnpike (single process) peak RSS over the whole run: ${(turnpikeRunPeak / 1024 / 1024).toFixed(1)} MiB`);

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const outFile = join(resultsDir, `${stamp}.json`);
const svgFile = join(resultsDir, `${stamp}.svg`);
const totalSeconds = (performance.now() - t0) / 1000;
writeFileSync(
  outFile,
  JSON.stringify(
    {
      date: started.toISOString(), command, env, plan, baseline: BASELINE,
      targets: targets.map((t) => ({ ...info(t), skipped: skipped.get(t) })),
      skipped: Object.fromEntries(skipped), rssPerWindow, turnpikePeakRssBytes: turnpikeRunPeak,
      startupSeconds, totalSeconds, cases,
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  svgFile,
  ratioChart(
    `Turnpike bench ${started.toISOString().slice(0, 16)}Z — ratios to ${BASELINE}${args.quick ? ' (quick)' : ''}`,
    BASELINE,
    cases.map((c) => ({ title: `${c.body} body, ${c.connections} connections`, rows: c.summary })),
  ),
);
console.log(`raw results: ${outFile}`);
console.log(`chart: ${svgFile}`);
console.log(`took ${totalSeconds.toFixed(1)} s (startup ${startupSeconds.toFixed(1)} s)`);

const stops = [...new Set([...running.values()].map((r) => r.child))].filter((c) => c !== backend);
await Promise.all(stops.map((c) => c.stop(3000)));
await Promise.all(helpers.map((h) => h.stop(1000)));
await backend.stop(1000);
// A window that failed on Turnpike or on the baselines makes the run fail; a peer gateway that stalls or a
// target that is skipped (not built yet, peers not installable) is reported in the tables instead.
const mustWork = (t: string) => t.startsWith('turnpike') || t === 'direct' || t === BASELINE;
const anyFailure =
  cases.some((c) => c.samples.some((s) => s.failure && mustWork(s.target))) || (targets.includes('turnpike') && skipped.has('turnpike'));
process.exit(anyFailure ? 1 : 0);
