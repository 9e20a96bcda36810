// `npm run soak -- [--duration 60m] [--rate N] [--capacity-seconds 10]` (catalogue row Z02): the built gateway
// (dist/cli/main.js, rebuilt first when older than src/) under mixed traffic — HTTP/1.1 and h2, plain and TLS,
// WebSocket, new connections per request — with 1 % of the requests hitting failing backends (resets before and
// during the answer, 503, slow, no answer at all), at 70 % of the capacity a short closed-loop run measures first
// (or at --rate). Every sample (each minute; a sixth of a run shorter than 10 minutes) stops the load, lets what is
// in flight end, and reads the gateway's RSS, heap after a full collection, file descriptors and active handles
// (bench/soak/probe.ts). Exit 1 when any of them (or heap plus external memory) grew more than 5 % from the sample
// at a sixth of the run (minute 10 of 60) to the end (RSS: only when the growth does not stop, see the run's end),
// when any answer was not the one its path must give, when the backend's accounting differs from what the load
// sent, or when the gateway logged an error or died.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { makeTestPki } from '../test/helpers/certs.ts';
import { removeOnExit, startChild } from './children.ts';
import { KINDS, Load, measureCapacity, newTally, runAtRate, type Tally } from './soak/load.ts';
import { describeSockets, sample, settle, type Sample } from './soak/probe.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const GROWTH_LIMIT = 0.05;
/** How an RSS growth over the limit is told from a leak: see the run's end. */
const PLATEAU_SAMPLES = 3;
const PLATEAU_MAX_EXTRA = 6;
const LOAD_SHARE = 0.7;
const MAX_IN_FLIGHT = 256;
const CAPACITY_CONCURRENCY = 64;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60m' },
    rate: { type: 'string' },
    'capacity-seconds': { type: 'string', default: '10' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: npm run soak -- [--duration 60m] [--rate N] [--capacity-seconds 10]
  --duration  how long the measured phase lasts: 90s, 10m, 1h (default 60m)
  --rate      requests per second (default: 70 % of a closed-loop capacity run of --capacity-seconds)
  To look into a failure: SOAK_KINDS=h1-tls,ws (only these kinds of traffic: ${KINDS.join(', ')}),
  SOAK_FAULT_SHARE=0.3 (instead of 0.01), SOAK_SOCKETS=1 (at the end, list the gateway's sockets and descriptors),
  SOAK_ACCESS_LOG=/path/access.log (the gateway writes its access log there: the error code of every request)`);
  process.exit(0);
}

function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(text);
  if (!m) {
    console.error(`--duration takes 90s, 10m or 1h, not "${text}"`);
    process.exit(2);
  }
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}
const duration = seconds(args.duration);
const capacitySeconds = Number(args['capacity-seconds']);
const fixedRate = args.rate === undefined ? undefined : Number(args.rate);
if (!(capacitySeconds > 0) || (fixedRate !== undefined && !(fixedRate > 0))) {
  console.error('--rate and --capacity-seconds take positive numbers');
  process.exit(2);
}
const interval = duration >= 600 ? 60 : duration / 6;

// --- the build -------------------------------------------------------------------------------------------
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  return newest;
}
if (!existsSync(CLI) || statSync(CLI).mtimeMs < newestMtime(join(ROOT, 'src'))) {
  console.log('dist/ is older than src/: building (tsc -p tsconfig.build.json)');
  const built = spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (built.status !== 0) process.exit(1);
}

// --- backend, gateway ----------------------------------------------------------------------------------
const { pki, serverCa } = makeTestPki();
removeOnExit(pki.dir);
const cert = pki.server(serverCa, { names: ['localhost'] });

const backend = startChild(process.execPath, [join(ROOT, 'bench/soak/backend.ts')], { guard: true });
const backendPort = Number((await backend.waitForOutput(/^(\d+)$/m, 10_000))[1]);
let backendStats: Promise<string> | undefined;
function askBackend(): Promise<string> {
  backendStats = backend.waitForOutput(/^stats (.*)$/m, 5000).then((m) => m[1]!);
  backend.proc.stdin!.write('stats\n');
  return backendStats;
}

const configFile = join(pki.dir, 'soak.yaml');
writeFileSync(
  configFile,
  `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0, h2c: true }
  - name: secure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:${backendPort}" }]
    keepAlive: { idleTimeout: 1s }
  faulty:
    targets: [{ url: "http://127.0.0.1:${backendPort}" }]
    keepAlive: { idleTimeout: 1s }
    timeouts: { response: 1s }
routes:
  - { name: faults, match: { path: /fault }, upstream: faulty }
  - { name: app, match: { path: / }, upstream: app }
${process.env.SOAK_ACCESS_LOG ? `accessLog: { enabled: true, output: ${JSON.stringify(process.env.SOAK_ACCESS_LOG)} }` : 'accessLog: { enabled: false }'}
shutdown: { drainTimeout: 1s }
`,
);
const gateway = startChild(
  process.execPath,
  [...NODE_FLAGS, '--inspect=127.0.0.1:0', CLI, 'start', '--config', configFile, '--no-watch'],
  { guard: true },
);
const ports = new Map<string, number>();
const gatewayErrors: string[] = [];
let pending = '';
gateway.proc.stderr!.setEncoding('utf8');
gateway.proc.stderr!.on('data', (text: string) => {
  pending += text;
  let nl: number;
  while ((nl = pending.indexOf('\n')) !== -1) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { level?: number; msg?: string; listener?: string; port?: number };
    if (entry.msg === 'listening' && entry.listener && entry.port) ports.set(entry.listener, entry.port);
    if ((entry.level ?? 0) >= 50 && gatewayErrors.length < 20) gatewayErrors.push(line.slice(0, 500));
  }
});
const inspectorUrl = (await gateway.waitForOutput(/Debugger listening on (ws:\/\/\S+)/, 15_000))[1]!;
const started = Date.now();
while (ports.size < 2) {
  if (gateway.hasExited() || Date.now() - started > 15_000) {
    console.error(`the gateway did not start:\n${gateway.tail()}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 50));
}

// --- the run --------------------------------------------------------------------------------------------
const load = new Load({ http: ports.get('web')!, https: ports.get('secure')!, ca: serverCa.cert });
console.log(
  `# Turnpike soak\n- ${new Date().toISOString()} · node ${process.version} · gateway pid ${gateway.pid} (http ${ports.get('web')}, https ${ports.get('secure')}) · ` +
    `duration ${args.duration}, a sample every ${interval} s, growth limit ${GROWTH_LIMIT * 100} % from ${duration / 6} s`,
);
let rate = fixedRate;
if (rate === undefined) {
  const capacity = await measureCapacity(load, CAPACITY_CONCURRENCY, capacitySeconds * 1000);
  rate = Math.round(capacity * LOAD_SHARE);
  console.log(`- capacity (closed loop, ${CAPACITY_CONCURRENCY} in flight, no faults): ${Math.round(capacity)} req/s`);
}
console.log(`- rate: ${rate} req/s (max ${MAX_IN_FLIGHT} in flight), 1 % of HTTP requests to failing backends`);
const capacityTally = load.tally;
load.tally = newTally();

const samples: Sample[] = [];
const totals = newTally();
const mb = (b: number) => (b / 1048576).toFixed(1);
let loadSeconds = 0;
const print = (s: Sample, t?: Tally, segment?: number) => {
  const lat = t ? [...t.latenciesMs].sort((a, b) => a - b) : [];
  const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!.toFixed(1) : '-');
  console.log(
    `${String(Math.round(s.at)).padStart(5)} s | ` +
      (t && segment
        ? `${Math.round((t.ok + t.expectedFaults + t.unexpected) / segment)} req/s, ok ${t.ok}, faults ${t.expectedFaults}, ` +
          `unexpected ${t.unexpected}, shed ${t.shed}, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms | `
        : 'before the load | ') +
      `rss ${mb(s.rssBytes)} MB, heap ${mb(s.heapUsedBytes)}/${mb(s.heapTotalBytes)} MB, external ${mb(s.externalBytes)} MB, fds ${s.fds}, handles ${s.handles}`,
  );
  for (const e of t?.errors ?? []) console.log(`        unexpected: ${e}`);
};
/**
 * The gateway's sockets, the soak's own sockets to the gateway, and what the kernel says of each end (both are
 * on loopback): tells a socket the client forgot from one the gateway did not close.
 */
async function socketReport(): Promise<string[]> {
  const gatewayPorts = [ports.get('web'), ports.get('secure'), backendPort].map(String);
  const own = (
    process as unknown as {
      _getActiveHandles(): Array<{ localPort?: number; remotePort?: number; constructor: { name: string } }>;
    }
  )
    ._getActiveHandles()
    .filter((h) => h.remotePort !== undefined && gatewayPorts.includes(String(h.remotePort)))
    .map((h) => `soak's ${h.constructor.name} ${h.localPort} -> ${h.remotePort}`);
  const kernel = spawnSync('ss', ['-tanoi'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => /^(?!LISTEN|TIME-WAIT)\S/.test(l) && gatewayPorts.some((p) => l.includes(`:${p} `)))
    .map((l) => `ss: ${l.replace(/\s+/g, ' ')}`);
  return [...(await describeSockets(inspectorUrl)).map((l) => `gateway's ${l}`), ...own, ...kernel];
}
await load.disconnect();
await settle(gateway.pid);
samples.push(await sample(gateway.pid, inspectorUrl, 0));
print(samples[0]!);
/** One interval of load at the soak's rate, then a sample of the idle gateway (undefined when it died). */
async function runInterval(at: number): Promise<Sample | undefined> {
  const segStart = performance.now();
  // `at` counts seconds under load: the pauses for the samples are not part of the run's duration.
  await runAtRate(
    load,
    rate!,
    MAX_IN_FLIGHT,
    () => performance.now() - segStart >= interval * 1000 || gateway.hasExited(),
  );
  const segment = (performance.now() - segStart) / 1000;
  loadSeconds += segment;
  if (gateway.hasExited()) return undefined;
  await load.disconnect();
  await settle(gateway.pid);
  const s = await sample(gateway.pid, inspectorUrl, at);
  samples.push(s);
  const t = load.tally;
  print(s, t, segment);
  // A socket the gateway still holds when nothing is in flight: say at once whose end is open, while it is.
  if (s.byType.TCPSocketWrap) for (const line of await socketReport()) console.log(`        ${line}`);
  totals.ok += t.ok;
  totals.expectedFaults += t.expectedFaults;
  totals.unexpected += t.unexpected;
  totals.shed += t.shed;
  totals.errors.push(...t.errors);
  load.tally = newTally();
  return s;
}
let at = interval;
for (; at <= duration + 1e-9; at += interval) if (!(await runInterval(at))) break;

// RSS is also the allocator's high-water mark: glibc keeps freed memory in its arenas, and a burst raises the mark
// by a step that stays (seen: +5 to +14 MB at random moments of 1-minute runs on a slow machine while heap,
// descriptors and handles held still; flat over 60 minutes). A leak grows with the traffic and does not stop. So an
// RSS growth over the limit is confirmed under more load: the run goes on, interval by interval (at most
// PLATEAU_MAX_EXTRA), until the last PLATEAU_SAMPLES samples lie within half of what a leak at the rate that crossed
// the limit (GROWTH_LIMIT from the base to the end) adds across them. Such a leak never shows that plateau and
// still fails; a growth that stops is a mark that rose, or a bounded store that filled.
const rssBase = () => samples.find((s) => s.at >= duration / 6 - 1e-9);
const rssGrowth = () => {
  const b = rssBase();
  return b ? (samples.at(-1)!.rssBytes - b.rssBytes) / b.rssBytes : 0;
};
const plateauSpread = (GROWTH_LIMIT * interval * (PLATEAU_SAMPLES - 1)) / (duration - duration / 6) / 2;
const plateau = () => {
  const last = samples.slice(-PLATEAU_SAMPLES);
  if (last.length < PLATEAU_SAMPLES || last[0]!.at < duration / 6) return false;
  const rss = last.map((s) => s.rssBytes);
  return (Math.max(...rss) - Math.min(...rss)) / rssBase()!.rssBytes <= plateauSpread;
};
let rssPlateau: string | undefined;
if (!gateway.hasExited() && rssGrowth() > GROWTH_LIMIT) {
  console.log(
    `- RSS grew ${(rssGrowth() * 100).toFixed(1)} %: the load goes on until RSS holds still (${PLATEAU_SAMPLES} samples ` +
      `within ${(plateauSpread * 100).toFixed(2)} %), at most ${PLATEAU_MAX_EXTRA} more intervals`,
  );
  for (let extra = 0; extra < PLATEAU_MAX_EXTRA && !plateau(); extra++, at += interval)
    if (!(await runInterval(at))) break;
  if (plateau()) {
    const last = samples.slice(-PLATEAU_SAMPLES);
    rssPlateau = `RSS held at ${mb(last[0]!.rssBytes)}–${mb(last.at(-1)!.rssBytes)} MB from ${last[0]!.at} s to ${last.at(-1)!.at} s: a step of the allocator's high-water mark, not a leak`;
  }
}

// --- the verdict ----------------------------------------------------------------------------------------
const failures: string[] = [];
if (gateway.hasExited()) failures.push(`the gateway exited during the run:\n${gateway.tail()}`);
if (!gateway.hasExited() && process.env.SOAK_SOCKETS) {
  console.log((await socketReport()).join('\n'));
  const kinds: Record<string, number> = {};
  for (const f of readdirSync(`/proc/${gateway.pid}/fd`)) {
    const k = readlinkSync(`/proc/${gateway.pid}/fd/${f}`)
      .replace(/\[\d+\]$/, '')
      .replace(/^\/.*/, 'file');
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  console.log(JSON.stringify(kinds));
}
const stats = JSON.parse(await askBackend()) as { requests: Record<string, number>; bodyMismatches: number };
await load.close();
await gateway.stop(5000);
await backend.stop(1000);

const sent = load.sentByPath;
const accounting = Object.keys({ ...sent, ...stats.requests })
  .filter((p) => p !== '/ws' && (sent[p] ?? 0) !== (stats.requests[p] ?? 0))
  .map((p) => `${p}: sent ${sent[p] ?? 0}, the backend received ${stats.requests[p] ?? 0}`);
if (accounting.length) failures.push(`accounting: ${accounting.join('; ')}`);
if (stats.bodyMismatches) failures.push(`${stats.bodyMismatches} request bodies arrived altered`);
const unexpected = totals.unexpected + capacityTally.unexpected;
if (unexpected)
  failures.push(`${unexpected} unexpected errors (first: ${[...capacityTally.errors, ...totals.errors][0]})`);
if (gatewayErrors.length) failures.push(`the gateway logged errors:\n  ${gatewayErrors.join('\n  ')}`);

const base = rssBase();
const end = samples.at(-1)!;
const growth: string[] = [];
if (base && base !== end) {
  for (const [name, key] of [
    ['RSS', 'rssBytes'],
    ['heap', 'heapUsedBytes'],
    ['heap and external memory', 'heldBytes'],
    ['file descriptors', 'fds'],
    ['handles', 'handles'],
  ] as const) {
    const g = (end[key] - base[key]) / base[key];
    growth.push(`${name} ${g >= 0 ? '+' : ''}${(g * 100).toFixed(1)} %`);
    if (g > GROWTH_LIMIT && !(key === 'rssBytes' && rssPlateau))
      failures.push(
        `${name} grew ${(g * 100).toFixed(1)} % from ${base.at} s to ${end.at} s (${base[key]} → ${end[key]}; ` +
          `handles then ${JSON.stringify(base.byType)}, now ${JSON.stringify(end.byType)})`,
      );
  }
} else failures.push('the run ended before the samples needed for the growth check');

const total = totals.ok + totals.expectedFaults + totals.unexpected;
console.log(
  `\n- requests: ${total} (${Math.round(total / loadSeconds)} req/s), ok ${totals.ok}, ` +
    `expected fault answers ${totals.expectedFaults}, unexpected ${totals.unexpected}, shed ${totals.shed}`,
);
console.log(`- backend received: ${JSON.stringify(stats.requests)}`);
console.log(`- growth from ${base?.at ?? '?'} s to ${end.at} s: ${growth.join(', ')}`);
if (rssPlateau) console.log(`- ${rssPlateau}`);
console.log(failures.length ? `\nFAIL\n- ${failures.join('\n- ')}` : '\nPASS');
process.exit(failures.length ? 1 : 0);
