// `npm run bench`: wrk against the backend directly, through Turnpike, and through the proxies people would
// pick instead (nginx, HAProxy, Node gateways), side by side on loopback behind the same backend.
// Full run: 3 s warm-up per target and case, then 3 rounds of 10 s with the target order rotating each round.
// `--quick`: 1 s warm-up, 1 round of 2 s, 50 connections, 100 B body only (under a minute).
// `--scenarios a,b`: besides this plain case, the scenarios of bench/scenarios/ (TLS h1 and h2, TCP streaming, the
// gateway routes, Connection: close), each with its own targets and tables; all of them by default.
// `--compare BASE`: another revision's build (a git worktree, bench/worktree.ts) beside this one, 5 rounds, ratios
// to node-limit, and a PASS/FAIL on how far apart they are (bench/compare.ts).
import { existsSync, mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { ratioChart } from './chart.ts';
import { removeOnExit, startChild, type Child } from './children.ts';
import { chooseConfig, compareCase, compareSection, compareVerdict, type Verdict } from './compare.ts';
import { startNginxBackend } from './nginx.ts';
import { ensurePeers, peerVersions } from './peers.ts';
import { cpuWindow, foreignCpuWindow, peakRssBytes, resetPeakRss } from './procstat.ts';
import { foreignLoad, markdownTable, summarize, type Sample, type Summary } from './report.ts';
import { TOOLS, ensureTools, toolPath, toolVersion, type ToolName } from './system.ts';
import {
  ALIASES,
  BASELINE,
  BASE_SUFFIX,
  GATEWAY_TARGETS,
  TARGETS,
  TWINNED,
  headOf,
  isBase,
  startTargets,
  type Running,
} from './targets.ts';
import { CLI, type Build, type GatewayKind } from './turnpike.ts';
import { describeCheckout, prepareRevision, resolveCommit, type Checkout, type Revision } from './worktree.ts';
import { runWrk } from './wrk.ts';
import { SCENARIOS, SCENARIO_HELP, SCENARIO_TOOLS, parseScenarios, runOwnScenarios } from './scenarios/index.ts';
import type { ScenarioOutcome } from './scenarios/rounds.ts';

const NAMES = TARGETS.map((t) => t.name);
const OWN_NAMES = NAMES.filter((n) => !isBase(n));
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string' },
    backend: { type: 'string', default: 'nginx' },
    connections: { type: 'string' },
    bodies: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    compare: { type: 'string' },
    head: { type: 'string' },
    bound: { type: 'string', default: '5' },
    scenarios: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

/** Compare mode's baseline: the thinnest Node proxy, so both builds are held against the same Node and undici. */
const COMPARE_BASELINE = 'node-limit';
const COMPARE_TARGETS = ['turnpike', 'turnpike-gateway'];

if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--targets a,b,c] [--backend nginx|node] [--rounds N] [--seconds S]
       npm run bench -- --compare BASE [--head REV] [--bound 5] [--quick] [--rounds N] [--targets a,b]
  --scenarios a,b  some of: ${SCENARIOS.join(', ')} (default: all; only plain with --targets or --compare)
${SCENARIOS.map((s) => `              ${s}: ${SCENARIO_HELP[s]}`).join('\n')}
  --quick     1 s warm-up, 1 round of 2 s (1 s beyond plain), 50 connections, 100 B body only (a smoke check,
              under 2 minutes on an idle machine)
  --targets   subset of: ${OWN_NAMES.join(', ')}
              (direct and ${BASELINE}, the baseline of every ratio, are always included)
  --backend   what serves /100b and /64k: nginx (default, static files) or node (bench/backend.ts)
  --connections 50,256   --bodies 100b,64k   only these cases (to look at one case while working on it)
  --rounds N  measured rounds per case (default 3, --quick 1, --compare 5)
  --seconds S length of one measurement (default 10, --quick 2): on a machine whose speed drifts, many short
              rounds keep the targets of one round close in time (compare mode: --seconds 3 --rounds 25)
  --compare BASE  any git revision (hash, HEAD~3, tag): builds it in a worktree under ${os.tmpdir()} (kept for the
              next run) and measures it beside this checkout's dist/ as <target>${BASE_SUFFIX}, in the same rotating
              rounds, with ${COMPARE_BASELINE} as the baseline; targets default to ${COMPARE_TARGETS.join(', ')} (the bare and
              the gateway route; also twinned: ${TWINNED.filter((t) => !COMPARE_TARGETS.includes(t)).join(', ')}).
              Prints, per case and route, both medians of the ratio to ${COMPARE_BASELINE} and PASS/FAIL; exits 1 on FAIL
  --head REV  compare mode: measure REV's build (its own worktree) as the head instead of this checkout's dist/
  --bound P   compare mode: the largest difference that passes, in percent (default 5)`);
  process.exit(0);
}
const compareMode = args.compare !== undefined;
const bound = Number(args.bound);
const roundsArg = args.rounds === undefined ? undefined : Number(args.rounds);
const secondsArg = args.seconds === undefined ? undefined : Number(args.seconds);
if (
  !Number.isFinite(bound) ||
  bound < 0 ||
  (roundsArg !== undefined && (!Number.isInteger(roundsArg) || roundsArg < 1)) ||
  (secondsArg !== undefined && (!Number.isInteger(secondsArg) || secondsArg < 1))
) {
  console.error('--bound takes a percentage (5), --rounds and --seconds a whole number ≥ 1');
  process.exit(2);
}
if (!compareMode && args.head !== undefined) {
  console.error('--head goes with --compare BASE');
  process.exit(2);
}
for (const rev of [args.compare, args.head]) {
  if (rev !== undefined && !resolveCommit(rev)) {
    console.error(`"${rev}" names no commit (try a hash, HEAD~3 or a tag)`);
    process.exit(2);
  }
}
// --targets and --compare are about the plain case: alone they keep meaning what they meant before scenarios.
let scenarios: ReturnType<typeof parseScenarios>;
try {
  scenarios = parseScenarios(
    args.scenarios ?? (args.targets !== undefined || compareMode ? 'plain' : SCENARIOS.join(',')),
  );
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
if (compareMode && scenarios.some((s) => s !== 'plain')) {
  console.error('--compare measures the plain case only: leave out --scenarios or give --scenarios plain');
  process.exit(2);
}
const wrkCases = (['plain', 'conn-close'] as const).filter((s) => scenarios.includes(s));
if (args.backend !== 'nginx' && args.backend !== 'node') {
  console.error(`--backend must be nginx or node, not "${args.backend}"`);
  process.exit(2);
}

const plan = args.quick
  ? { warmupSeconds: 1, rounds: 1, seconds: 2, connections: [50], bodies: ['100b'] }
  : { warmupSeconds: 3, rounds: 3, seconds: 10, connections: [50, 256], bodies: ['100b', '64k'] };
// Compare mode: at least 5 interleaved rounds (issue 14), whatever the durations.
plan.rounds = roundsArg ?? (compareMode ? 5 : plan.rounds);
if (secondsArg !== undefined) plan.seconds = secondsArg;

if (args.connections) plan.connections = args.connections.split(',').map(Number);
if (args.bodies) plan.bodies = args.bodies.split(',');
if (
  plan.connections.some((c) => !Number.isInteger(c) || c < 1) ||
  plan.bodies.some((b) => b !== '100b' && b !== '64k')
) {
  console.error('--connections takes whole numbers, --bodies 100b and/or 64k');
  process.exit(2);
}

const baseline = compareMode ? COMPARE_BASELINE : BASELINE;
const targetList = args.targets ?? (compareMode ? COMPARE_TARGETS : OWN_NAMES).join(',');
const requested = new Set(
  targetList
    .split(',')
    .map((t) => ALIASES[t.trim()] ?? t.trim())
    .filter(Boolean),
);
for (const t of requested) {
  if (!NAMES.includes(t) || (isBase(t) && !compareMode)) {
    console.error(
      `unknown target "${t}", expected some of: ${OWN_NAMES.join(', ')}${compareMode ? '' : ` (${BASE_SUFFIX} ones with --compare)`}`,
    );
    process.exit(2);
  }
  // Compare mode measures every route the base build can serve from both builds.
  if (compareMode && TWINNED.includes(t)) requested.add(`${t}${BASE_SUFFIX}`);
}
const always = compareMode ? [baseline] : ['direct', baseline];
const targets = wrkCases.length ? NAMES.filter((t) => always.includes(t) || requested.has(t)) : [];
const info = (name: string) => TARGETS.find((t) => t.name === name)!;

/** Every line of the report goes to stdout and, at the end, into the results' markdown file. */
const report: string[] = [];
function say(line = ''): void {
  console.log(line);
  report.push(line);
}

const started = new Date();
const t0 = performance.now();
const command = ['node', 'bench/run.ts', ...process.argv.slice(2)].join(' ');
const cpus = os.cpus();
say('# Turnpike benchmark');
say();
say(`- date: ${started.toISOString()}`);
say(`- command: ${command}`);
say(`- scenarios: ${scenarios.join(', ')}`);

// --- what the run needs: system tools, npm peers, the built CLI ------------------------------------------
const skippedUpFront = new Map<string, string>();
const tools = new Set<ToolName>([
  'wrk',
  ...targets.flatMap((t) => info(t).tools),
  ...scenarios.flatMap((s) => SCENARIO_TOOLS[s]),
]);
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

// --- compare mode: the base build (and the head's, with --head) from git worktrees -----------------------
let baseRev: Revision | undefined;
let headRev: Revision | undefined;
if (compareMode) {
  try {
    baseRev = await prepareRevision(args.compare!);
    if (args.head !== undefined) headRev = await prepareRevision(args.head);
  } catch (err) {
    console.error(`--compare: ${(err as Error).message}`);
    process.exit(1);
  }
}
const headCli = headRev?.cli ?? CLI;
/** This checkout as the head: its commit, and what its dist/ may hold beyond it (the tree is shared). */
const checkout: Checkout | undefined = compareMode && !headRev ? describeCheckout(headCli) : undefined;
if (!existsSync(headCli)) {
  for (const t of targets) {
    if (t.startsWith('turnpike') && !isBase(t))
      skippedUpFront.set(t, `${relative(process.cwd(), headCli)} not found — run \`npm run build\` first`);
  }
}

const env = {
  node: process.version,
  wrk: toolVersion(TOOLS.wrk),
  nginx: toolPath(TOOLS.nginx) ? toolVersion(TOOLS.nginx) : 'not installed',
  haproxy: toolPath(TOOLS.haproxy) ? toolVersion(TOOLS.haproxy) : 'not installed',
  redis:
    targets.includes('turnpike-gateway-redis') && toolPath(TOOLS['redis-server'])
      ? toolVersion(TOOLS['redis-server']).replace(/\s+sha=.*$/, '')
      : undefined,
  peers: peerPackages.length ? peerVersions() : {},
  cpu: `${cpus.length} × ${cpus[0]?.model ?? 'unknown'}`,
  os: `${os.type()} ${os.release()}`,
  backend: backendKind,
};
say(
  `- node ${env.node} · ${env.wrk} · ${env.nginx} · ${env.haproxy}${env.redis ? ` · ${env.redis}` : ''} · ${env.cpu} · ${env.os}`,
);
if (peerPackages.length)
  say(
    `- peers: ${Object.entries(env.peers)
      .map(([p, v]) => `${p} ${v}`)
      .join(', ')}`,
  );
say(
  `- plan: warm-up ${plan.warmupSeconds} s per target and case, ${plan.rounds} round(s) of ${plan.seconds} s in rotating order, ` +
    `wrk -t2 -c{${plan.connections.join(',')}} keep-alive, bodies ${plan.bodies.join(', ')}`,
);
say(
  `- wrk, the backend and every proxy share this machine's ${cpus.length} cores; compare ratios, not absolute numbers`,
);

const tmp = mkdtempSync(join(os.tmpdir(), 'turnpike-bench-'));
removeOnExit(tmp);

// Compare mode: each revision's build gets the config it accepts (the same one, unless the base predates a key).
const builds: { head?: Build; base?: Build } = {};
const configNotes: string[] = [];
if (baseRev) {
  const gateways = [...requested]
    .filter((t) => isBase(t) && GATEWAY_TARGETS[headOf(t)])
    .map((t) => GATEWAY_TARGETS[headOf(t)]!) as GatewayKind[];
  for (const [side, rev] of [
    ['base', baseRev],
    ['head', headRev],
  ] as const) {
    if (!rev) continue;
    const chosen = await chooseConfig(rev, gateways, tmp);
    builds[side] = chosen.build;
    if (chosen.refused) {
      configNotes.push(
        `${side} ${rev.short} refused this bench's config (${chosen.refused}); ` +
          (chosen.config === 'own'
            ? 'it runs the config its own bench/turnpike.ts writes'
            : 'its own bench/turnpike.ts did not help either'),
      );
    }
  }
}
const label = (r: Revision) => `${r.short}${r.rev === r.short || r.commit.startsWith(r.rev) ? '' : ` (${r.rev})`}`;
const baseLabel = baseRev ? label(baseRev) : '';
const headLabel = headRev
  ? label(headRev)
  : `this checkout (HEAD ${checkout?.short ?? '?'}${checkout?.uncommitted.length ? ` + ${checkout.uncommitted.length} uncommitted file(s)` : ''})`;
if (baseRev) {
  const where = (r: Revision) =>
    `${label(r)} "${r.subject.slice(0, 80)}${r.subject.length > 80 ? '…' : ''}" — worktree ${r.dir}, node_modules ${r.deps}, dist/ ${r.built ? 'built now' : 'reused'}`;
  say(`- compare: base ${where(baseRev)}`);
  if (headRev) say(`- compare: head ${where(headRev)}`);
  else {
    const c = checkout!;
    say(
      `- compare: head this checkout's dist/ (HEAD ${c.short}` +
        `${c.uncommitted.length ? `; uncommitted: ${c.uncommitted.slice(0, 5).join(', ')}${c.uncommitted.length > 5 ? ', …' : ''}` : ''})`,
    );
    if (c.newerThanBuild.length) {
      const warn =
        `dist/ is older than ${c.newerThanBuild.length} file(s) under src/ (${c.newerThanBuild.slice(0, 3).join(', ')}${c.newerThanBuild.length > 3 ? ', …' : ''}): ` +
        'the head measured is the last build — run `npm run build` (or use --head HEAD) to measure the sources';
      say(`- WARNING: ${warn}`);
      console.error(`WARNING: ${warn}`);
    }
  }
  say(
    `- compare: ${configNotes.length ? configNotes.join('; ') : 'both builds run the same generated config'}; ` +
      `V8 flags: each build's own (base ${builds.base!.nodeFlags.join(' ')}${baseRev.flagsBorrowed ? ', borrowed: it has no node-flags.ts' : ''}` +
      `${(builds.head?.nodeFlags ?? NODE_FLAGS).join(' ') === builds.base!.nodeFlags.join(' ') ? ', the same as head' : `; head ${(builds.head?.nodeFlags ?? NODE_FLAGS).join(' ')}`})`,
  );
  say(`- compare: PASS when the medians of the ratio to ${baseline} of head and base differ by at most ${bound} %`);
}

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
  const child = startChild(process.execPath, [fileURLToPath(new URL('./backend.ts', import.meta.url)), '--port', '0'], {
    guard: true,
  });
  return { child, port: Number((await child.waitForOutput(/^(\d+)$/m, 10_000))[1]) };
}
const { child: backend, port: backendPort } = await startBackend();
env.backend = backendKind;
const { running, skipped, helpers } = await startTargets(
  targets,
  { tmp, backendPort, backend, builds },
  skippedUpFront,
);
const active = targets.filter((t) => running.has(t));
const startupSeconds = (performance.now() - t0) / 1000;

say(
  `- backend: ${backendKind === 'nginx' ? 'nginx, 1 worker, static files of 100 B and 64 KiB, access_log off' : 'bench/backend.ts (node:http, buffers in memory)'}`,
);
if (targets.length) {
  say(
    `- targets (every Node one — Turnpike, the peers, node-limit — runs on this Node with ${NODE_FLAGS.join(' ')}${baseRev ? '; the compared builds with their own' : ''}):`,
  );
  for (const t of targets) say(`  - ${t}: ${info(t).describe}${skipped.has(t) ? ' — SKIPPED' : ''}`);
  say(
    `- access logs: ${targets.filter((t) => info(t).accessLog).join(', ')} write one (nginx buffered: buffer=64k flush=1s); the others log nothing`,
  );
}
say(`- started in ${startupSeconds.toFixed(1)} s\n`);
for (const [t, why] of skipped) console.error(`${t}: skipped — ${why}`);
if (targets.length && !running.has(baseline)) console.error(`${baseline} is not running: ratio columns will be empty`);

// Per-window peak RSS needs the kernel to let us reset VmHWM; otherwise it is the peak so far.
let rssPerWindow = true;

/** One wrk window, with the target's process tree CPU and peak memory sampled around it. */
async function measure(
  r: Running,
  body: string,
  connections: number,
  seconds: number,
  round: number,
  extraHeaders?: Readonly<Record<string, string>>,
): Promise<Sample> {
  const url = `${r.base}${body}`;
  if (r.child.hasExited()) {
    return {
      target: r.name,
      round,
      url,
      failure: `process exited (${await r.child.exited}): ${r.child.tail().slice(-300)}`,
      raw: '',
    };
  }
  rssPerWindow = resetPeakRss(r.child.pid) && rssPerWindow;
  const cpu = cpuWindow(r.child.pid);
  const backendCpu = cpuWindow(backend.pid);
  const sidecarCpu = r.sidecar && !r.sidecar.hasExited() ? cpuWindow(r.sidecar.pid) : undefined;
  const foreignCpu = foreignCpuWindow();
  const run = await runWrk({ url, seconds, connections, headers: { ...r.headers, ...extraHeaders } });
  const foreignCpuPercent = foreignCpu();
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
    target: r.name,
    round,
    url,
    raw: run.raw,
    failure: run.failure,
    reqPerSec: w?.reqPerSec,
    requests: w?.requests,
    p50Ms: w?.p50Ms,
    p99Ms: w?.p99Ms,
    errors: w?.errors,
    timeouts: w?.socketErrors.timeout,
    cpuPercent,
    peakRssBytes: peak,
    backendCpuPercent,
    sidecarCpuPercent,
    foreignCpuPercent,
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
  readonly scenario: 'plain' | 'conn-close';
  readonly body: string;
  readonly connections: number;
  readonly samples: Sample[];
  summary: Summary[];
}
const cases: CaseResult[] = [];

/** The conn-close case: wrk asks every response to close its connection, so each request opens a new one. */
const CLOSE = { connection: 'close' };
for (const scenario of wrkCases) {
  for (const connections of plan.connections) {
    for (const body of plan.bodies) {
      const extra = scenario === 'conn-close' ? CLOSE : undefined;
      // --quick keeps under 2 minutes with every scenario: conn-close after plain skips the warm-up (the same
      // processes were just warmed) and measures 1 s windows.
      const quickClose = extra !== undefined && args.quick && secondsArg === undefined;
      const warmup = quickClose && wrkCases.includes('plain') ? 0 : plan.warmupSeconds;
      const seconds = quickClose ? 1 : plan.seconds;
      const label = `[${scenario === 'conn-close' ? 'conn-close ' : ''}${body} · ${connections} conns]`;
      const samples: Sample[] = [];
      for (const t of warmup > 0 ? active : []) {
        const warm = await measure(running.get(t)!, body, connections, warmup, 0, extra);
        if (warm.failure) console.error(`${label} warm-up ${t} failed: ${warm.failure}`);
      }
      for (let round = 1; round <= plan.rounds; round++) {
        // Rotate the order so no target always runs first (or always right after another one).
        const order = active.map((_, i) => active[(i + round - 1) % active.length]!);
        for (const t of order) {
          const s = await measure(running.get(t)!, body, connections, seconds, round, extra);
          samples.push(s);
          progress(`${label} round ${round}/${plan.rounds}`, s);
        }
      }
      cases.push({ scenario, body, connections, samples, summary: summarize(targets, samples, skipped, baseline) });
    }
  }
}

// --- report ---------------------------------------------------------------------------------------------
const tp = running.get('turnpike');
const turnpikeRunPeak = tp && !tp.child.hasExited() ? peakRssBytes(tp.child.pid) : undefined;

// The plain case's processes go before the other scenarios start theirs (the backend stays: they share it).
const stops = [...new Set([...running.values()].map((r) => r.child))].filter((c) => c !== backend);
await Promise.all(stops.map((c) => c.stop(3000)));
await Promise.all(helpers.map((h) => h.stop(1000)));
const own = scenarios.filter((s) => s !== 'plain' && s !== 'conn-close');
const outcomes: Map<string, ScenarioOutcome> = own.length
  ? await runOwnScenarios(own, {
      tmp,
      backendPort,
      backend,
      quick: args.quick,
      // --quick stays under 2 minutes with every scenario: theirs measure 1 s windows (after their 1 s warm-up).
      plan: { ...plan, seconds: args.quick && secondsArg === undefined ? 1 : plan.seconds },
      plainPerCore: new Map(
        cases
          .filter((c) => c.scenario === 'plain')
          .flatMap((c) => {
            const r = c.summary.find((x) => x.target === 'turnpike')?.perCoreRatio;
            return r === undefined || baseline !== BASELINE ? [] : [[`${c.body}·${c.connections}`, r] as const];
          }),
      ),
    })
  : new Map();

// The cost lines compare with the bare `turnpike` row: this build's stacks only.
const stacks = new Map(
  TARGETS.filter((t) => t.stack && !isBase(t.name)).map((t) => [
    t.name,
    { stack: t.stack!, expect: t.expect, budget: t.budget, versus: t.versus },
  ]),
);
say();
const caseTitle = (c: CaseResult) =>
  `${c.scenario === 'conn-close' ? 'conn-close (Connection: close): ' : ''}${c.body} body, ${c.connections} connections`;
for (const c of cases) {
  say(markdownTable(caseTitle(c), c.summary, baseline, c.samples, stacks));
  say();
}
const medianNote =
  plan.rounds > 1 ? `medians over ${plan.rounds} rounds; errors summed, peak RSS max over rounds` : 'single round';
say(
  `${medianNote}. × ${cases.length ? baseline : 'the baseline'}: ratio to ${cases.length ? baseline : 'it'} in the same round (median of per-round ratios).`,
);
say(
  "CPU % and peak RSS: the target's whole process tree (nginx master + workers, Turnpike workers) during each load window, " +
    "100% = one core; for direct they are the backend's own. req/s per core = req/s ÷ (CPU % / 100). " +
    'The same holds in every scenario below, each with its own baseline.',
);
if (running.has('turnpike-gateway-redis')) {
  say(
    "The redis-server of turnpike-gateway-redis is not in that row's CPU % or req/s per core; its own CPU % is in the cost line.",
  );
}
if (!rssPerWindow) say('note: the kernel refused to reset VmHWM, so peak RSS is the peak since each process started');
if (turnpikeRunPeak)
  say(`Turnpike (single process) peak RSS over the whole run: ${(turnpikeRunPeak / 1024 / 1024).toFixed(1)} MiB`);
const foreign = foreignLoad([...cases.flatMap((c) => c.samples), ...[...outcomes.values()].flatMap((o) => o.samples)]);
if (foreign.line) say(foreign.line);
for (const [, o] of outcomes) {
  say();
  say(o.markdown);
}

let verdicts: Verdict[] = [];
if (baseRev) {
  verdicts = cases.flatMap((c) => compareCase(`${c.body} · ${c.connections} conns`, c.summary, c.samples, bound / 100));
  const routes = new Map(
    TWINNED.map((t) => [
      t,
      t === 'turnpike' ? 'bare route' : `${info(t).expect === 'gain' ? 'cached' : 'gateway'} route: ${info(t).stack}`,
    ]),
  );
  say();
  say(
    compareSection(
      { base: baseLabel, head: headLabel, baseline, rounds: plan.rounds, bound, routes, foreign },
      verdicts,
    ),
  );
  say();
}

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const stamp = started
  .toISOString()
  .replace(/:/g, '-')
  .replace(/\.\d+Z$/, 'Z');
const outFile = join(resultsDir, `${stamp}.json`);
const svgFile = join(resultsDir, `${stamp}.svg`);
const mdFile = join(resultsDir, `${stamp}.md`);
const totalSeconds = (performance.now() - t0) / 1000;
writeFileSync(
  outFile,
  JSON.stringify(
    {
      date: started.toISOString(),
      command,
      env,
      plan,
      baseline,
      targets: targets.map((t) => ({ ...info(t), skipped: skipped.get(t) })),
      skipped: Object.fromEntries(skipped),
      rssPerWindow,
      turnpikePeakRssBytes: turnpikeRunPeak,
      startupSeconds,
      totalSeconds,
      foreignCpu: { median: foreign.median, max: foreign.max },
      cases,
      scenarios: Object.fromEntries([...outcomes].map(([n, o]) => [n, o.data])),
      ...(baseRev
        ? {
            compare: {
              base: {
                rev: baseRev.rev,
                commit: baseRev.commit,
                subject: baseRev.subject,
                worktree: baseRev.dir,
                deps: baseRev.deps,
                nodeFlags: builds.base!.nodeFlags,
              },
              head: headRev
                ? {
                    rev: headRev.rev,
                    commit: headRev.commit,
                    subject: headRev.subject,
                    worktree: headRev.dir,
                    deps: headRev.deps,
                    nodeFlags: builds.head!.nodeFlags,
                  }
                : {
                    checkout: true,
                    commit: checkout!.commit,
                    uncommitted: checkout!.uncommitted,
                    srcNewerThanBuild: checkout!.newerThanBuild,
                    nodeFlags: NODE_FLAGS,
                  },
              config: configNotes,
              baseline,
              rounds: plan.rounds,
              boundPercent: bound,
              verdicts,
              pass: verdicts.length > 0 && verdicts.every((v) => v.pass),
            },
          }
        : {}),
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  svgFile,
  ratioChart(
    `Turnpike bench ${started.toISOString().slice(0, 16)}Z — ratios to ${baseline}${args.quick ? ' (quick)' : ''}`,
    baseline,
    [
      ...cases.map((c) => ({ title: caseTitle(c), rows: c.summary })),
      ...[...outcomes.values()].flatMap((o) =>
        (o.charts ?? []).map((c) => ({ title: `${c.title} (× ${c.baseline})`, rows: c.rows })),
      ),
    ],
  ),
);
say(`raw results: ${outFile}`);
say(`chart: ${svgFile}`);
say(`report: ${mdFile}`);
say(`took ${totalSeconds.toFixed(1)} s (startup ${startupSeconds.toFixed(1)} s)`);
if (baseRev) say(compareVerdict({ bound, foreign }, verdicts));
writeFileSync(mdFile, report.join('\n') + '\n');

await backend.stop(1000);
// A window that failed on Turnpike or on the baselines makes the run fail; a peer gateway that stalls or a
// target that is skipped (not built yet, peers not installable) is reported in the tables instead.
const mustWork = (t: string) => t.startsWith('turnpike') || t === 'direct' || t === baseline;
const anyFailure =
  cases.some((c) => c.samples.some((s) => s.failure && mustWork(s.target))) ||
  (targets.includes('turnpike') && skipped.has('turnpike')) ||
  [...outcomes.values()].some((o) => o.failed) ||
  (compareMode && !(verdicts.length > 0 && verdicts.every((v) => v.pass)));
process.exit(anyFailure ? 1 : 0);
