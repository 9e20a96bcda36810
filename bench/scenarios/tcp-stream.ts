// Scenario tcp-stream: L4 throughput. One connection carries a 1 GiB upload (client → proxy → sink) or a 1 GiB
// download (source → proxy → client) through Turnpike (`protocol: tcp` listener, tcp:// upstream), HAProxy
// (`mode tcp`) and nginx (`stream {}`), each with one worker/thread; MB/s, the proxy's CPU (so MB/s per core) and
// its peak RSS, in interleaved rounds; ratios to haproxy-tcp. `direct` is the sink/source itself, no proxy.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { runCommand, startChild, type Child } from '../children.ts';
import { launchHAProxy } from '../haproxy.ts';
import { freePort, waitUntil } from '../net.ts';
import { launchNginx, nginxMain } from '../nginx.ts';
import { fmt, summarize, type Sample, type Summary } from '../report.ts';
import { TOOLS } from '../system.ts';
import { CLI } from '../turnpike.ts';
import { interleave, startAll, stopAll, type Contender, type ScenarioContext, type ScenarioOutcome } from './rounds.ts';
import { transfer } from './stream-peer.ts';

export const STREAM_BASELINE = 'haproxy-tcp';
const NAMES = ['direct-tcp', 'haproxy-tcp', 'nginx-stream', 'turnpike-tcp'];
const PEER = fileURLToPath(new URL('./stream-peer.ts', import.meta.url));
const MiB = 1 << 20;

interface L4 {
  readonly child: Child;
  readonly port: number;
  readonly describe: string;
}

const ready = (port: number) => async () => void (await transfer(port, 'download', MiB, 2000));

async function startTurnpikeTcp(dir: string, sinkPort: number): Promise<L4> {
  const port = await freePort();
  const file = join(dir, 'turnpike-tcp.yaml');
  const config = {
    listeners: [{ name: 'stream', protocol: 'tcp', address: '127.0.0.1', port, upstream: 'sink' }],
    upstreams: { sink: { targets: [{ url: `tcp://127.0.0.1:${sinkPort}` }] } },
    shutdown: { drainTimeout: '1s' },
  };
  writeFileSync(file, stringify(config));
  const child = startChild(process.execPath, [...NODE_FLAGS, CLI, 'start', '--config', file], { guard: true });
  try {
    await waitUntil(`turnpike tcp on ${port}`, ready(port), 15_000, () => child.hasExited());
  } catch (err) {
    const why = child.hasExited() ? child.stderrHead().trim().split('\n')[0] : undefined;
    await child.stop(1000);
    throw new Error(why || (err as Error).message);
  }
  return { child, port, describe: 'Turnpike, one process, `protocol: tcp` listener to a tcp:// upstream' };
}

async function startNginxStream(dir: string, sinkPort: number): Promise<L4> {
  const port = await freePort();
  const config = `load_module ${TOOLS['nginx-stream'].paths[0]};
${nginxMain(dir, '1')}stream {
  server {
    listen 127.0.0.1:${port} backlog=4096;
    proxy_pass 127.0.0.1:${sinkPort};
  }
}
`;
  const child = await launchNginx(dir, port, config, ready(port));
  return { child, port, describe: 'nginx stream {} (ngx_stream_module), 1 worker, proxy_pass, default 16k buffers' };
}

async function startHAProxyTcp(dir: string, sinkPort: number): Promise<L4> {
  const port = await freePort();
  const config = `global
  nbthread 1
  maxconn 4096

defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s

frontend bench
  bind 127.0.0.1:${port}
  default_backend backend

backend backend
  server b1 127.0.0.1:${sinkPort}
`;
  const child = await launchHAProxy(dir, config, ready(port));
  return { child, port, describe: 'HAProxy mode tcp, nbthread 1 (no splice option: buffers copied as by the others)' };
}

/** MB/s of one transfer (10^6 bytes per second), as the load result's rate. */
async function oneTransfer(port: number, mode: 'upload' | 'download', bytes: number) {
  const res = await runCommand(
    process.execPath,
    [PEER, '--port', String(port), '--mode', mode, '--bytes', String(bytes)],
    180_000,
  );
  const line = res.output.trim().split('\n').pop() ?? '';
  if (res.code !== 0 || !line.startsWith('{')) return { failure: line || `exit ${res.code}`, raw: res.output };
  const t = JSON.parse(line) as { bytes: number; seconds: number };
  return { raw: line, result: { reqPerSec: t.bytes / 1e6 / t.seconds, requests: t.bytes, errors: 0 } };
}

function table(title: string, rows: readonly Summary[]): string {
  const lines = [
    `### ${title}`,
    '',
    `| target | MB/s | × ${STREAM_BASELINE} | proxy CPU % | MB/s per core | per core × ${STREAM_BASELINE} | peak RSS | failed |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.target} | skipped | – | – | – | – | – | – |`);
      continue;
    }
    lines.push(
      `| ${r.target} | ${fmt.int(r.reqPerSec)} | ${fmt.ratio(r.ratio)} | ${fmt.pct(r.cpuPercent)} | ${fmt.int(r.reqPerCore)} | ` +
        `${fmt.ratio(r.perCoreRatio)} | ${fmt.mb(r.peakRssBytes)} | ${r.failedRounds} |`,
    );
  }
  const skipped = rows.filter((r) => r.skipped).map((r) => `- ${r.target} skipped: ${r.skipped}`);
  return [...lines, ...(skipped.length ? ['', ...skipped] : [])].join('\n');
}

export async function runTcpStream(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const bytes = ctx.quick ? 128 * MiB : 1024 * MiB;
  const warm = ctx.quick ? 8 * MiB : 32 * MiB;
  const dir = (n: string) => {
    const d = join(ctx.tmp, n);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const sink = startChild(process.execPath, [PEER, '--serve'], { guard: true });
  const sinkPort = Number((await sink.waitForOutput(/^(\d+)$/m, 10_000))[1]);
  const ports = new Map<string, L4>();
  const starters: Record<string, () => Promise<L4>> = {
    'direct-tcp': async () => ({ child: sink, port: sinkPort, describe: 'the sink/source itself, no proxy' }),
    'haproxy-tcp': () => startHAProxyTcp(dir('haproxy-tcp'), sinkPort),
    'nginx-stream': () => startNginxStream(dir('nginx-stream'), sinkPort),
    'turnpike-tcp': () => startTurnpikeTcp(dir('turnpike-tcp'), sinkPort),
  };
  const { skipped } = await startAll(
    Object.fromEntries(
      Object.entries(starters).map(([n, start]) => [
        n,
        async (): Promise<Contender> => {
          const l4 = await start();
          ports.set(n, l4);
          return { name: n, child: l4.child, run: async () => ({ raw: '' }) };
        },
      ]),
    ),
  );
  const live = NAMES.filter((n) => ports.has(n));
  // A short transfer each way first: the JIT of the Node ends and of Turnpike, the proxies' buffers.
  for (const n of live) {
    await transfer(ports.get(n)!.port, 'upload', warm).catch(() => {});
    await transfer(ports.get(n)!.port, 'download', warm).catch(() => {});
  }
  const cases: { title: string; summary: Summary[]; samples: Sample[] }[] = [];
  for (const mode of ['upload', 'download'] as const) {
    const contenders = live.map((n): Contender => ({
      name: n,
      child: ports.get(n)!.child,
      run: () => oneTransfer(ports.get(n)!.port, mode, bytes),
    }));
    const samples = await interleave(`[tcp-stream ${mode}]`, contenders, { ...ctx.plan, warmupSeconds: 0 });
    cases.push({
      title: `tcp-stream: ${mode} of ${bytes / MiB} MiB on one connection`,
      summary: summarize(NAMES, samples, skipped, STREAM_BASELINE),
      samples,
    });
  }
  await stopAll(
    live.map((n) => ({ name: n, child: ports.get(n)!.child, run: async () => ({ raw: '' }) })),
    [sink],
  );
  await sink.stop(1000);
  return {
    markdown: [
      '## Scenario tcp-stream',
      '',
      `One connection carries ${bytes / MiB} MiB each way in turn through each L4 proxy, from and to a Node sink/source ` +
        '(bench/scenarios/stream-peer.ts, the client in a process of its own). MB/s = 10^6 bytes/s over the transfer; ' +
        "CPU % and peak RSS are the proxy's process tree during it (direct-tcp: the sink/source's own).",
      '',
      ...NAMES.map((n) => `- ${n}: ${ports.get(n)?.describe ?? `SKIPPED — ${skipped.get(n)}`}`),
      '',
      ...cases.map((c) => table(c.title, c.summary) + '\n'),
    ].join('\n'),
    data: { bytes, cases },
    samples: cases.flatMap((c) => c.samples),
    failed:
      skipped.has('turnpike-tcp') || cases.some((c) => c.samples.some((s) => s.failure && s.target === 'turnpike-tcp')),
  };
}
