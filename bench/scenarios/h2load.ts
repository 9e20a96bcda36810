// Running h2load (nghttp2-client) for a fixed time and reading its summary; latency percentiles come from its
// per-request log (--log-file), since its summary has only min, max, mean and sd.
import { readFileSync, rmSync } from 'node:fs';
import { runCommand } from '../children.ts';
import type { LoadRun } from './rounds.ts';

export interface H2loadResult {
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly total: number;
  readonly started: number;
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  readonly status: { readonly '2xx': number; readonly '3xx': number; readonly '4xx': number; readonly '5xx': number };
  /** Failed, errored and timed-out requests plus 4xx/5xx answers. */
  readonly errors: number;
  /** From "time for request:" (min, max, mean), in ms. */
  readonly meanMs?: number;
  readonly maxMs?: number;
  readonly protocol?: string;
  readonly cipher?: string;
  readonly serverTempKey?: string;
  readonly alpn?: string;
}

/** h2load prints durations as 453us, 38.78ms or 1.23s. */
export function h2Ms(text: string): number {
  const m = text.match(/^([\d.]+)(us|ms|s)$/);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
}

export function parseH2load(out: string): H2loadResult {
  const fin = out.match(/^finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/m);
  const req = out.match(
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m,
  );
  const codes = out.match(/^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m);
  if (!fin || !req || !codes) throw new Error('could not find h2load\'s "finished in", "requests:" or "status codes:"');
  const n = (i: number) => Number(req[i]);
  const status = { '2xx': Number(codes[1]), '3xx': Number(codes[2]), '4xx': Number(codes[3]), '5xx': Number(codes[4]) };
  const time = out.match(/^time for request:\s+(\S+)\s+(\S+)\s+(\S+)/m);
  const line = (re: RegExp) => out.match(re)?.[1]?.trim();
  return {
    seconds: h2Ms(`${fin[1]}${fin[2]}`) / 1000,
    reqPerSec: Number(fin[3]),
    total: n(1),
    started: n(2),
    done: n(3),
    succeeded: n(4),
    failed: n(5),
    errored: n(6),
    timeout: n(7),
    status,
    errors: n(5) + n(6) + n(7) + status['4xx'] + status['5xx'],
    meanMs: time ? h2Ms(time[3]!) : undefined,
    maxMs: time ? h2Ms(time[2]!) : undefined,
    protocol: line(/^TLS Protocol: (.+)$/m),
    cipher: line(/^Cipher: (.+)$/m),
    serverTempKey: line(/^Server Temp Key: (.+)$/m),
    alpn: line(/^Application protocol: (.+)$/m),
  };
}

/** p50 and p99 (ms) from h2load's --log-file: one line per request, tab-separated start (µs), status, duration (µs). */
export function logPercentiles(log: string): { p50Ms?: number; p99Ms?: number; count: number } {
  const us: number[] = [];
  for (const line of log.split('\n')) {
    const f = line.split('\t');
    if (f.length >= 3 && f[2] !== '') us.push(Number(f[2]));
  }
  if (us.length === 0) return { count: 0 };
  const sorted = Float64Array.from(us).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000;
  return { p50Ms: at(0.5), p99Ms: at(0.99), count: sorted.length };
}

export interface H2loadOptions {
  readonly url: string;
  readonly seconds: number;
  readonly clients: number;
  readonly streams: number;
  readonly threads?: number;
  /** Where the per-request log goes (removed after reading). */
  readonly logFile: string;
}

export interface H2loadRun extends LoadRun {
  readonly h2?: H2loadResult;
}

/** One h2load run for `seconds` (-D); never throws for h2load's own failures, killed if it overruns by 15 s. */
export async function runH2load(o: H2loadOptions): Promise<H2loadRun> {
  const args = [
    `-c${o.clients}`,
    `-m${o.streams}`,
    `-t${o.threads ?? 2}`,
    '-D',
    String(o.seconds),
    `--log-file=${o.logFile}`,
    o.url,
  ];
  const res = await runCommand('h2load', args, (o.seconds + 15) * 1000);
  try {
    if (res.timedOut) return { failure: `h2load did not finish within ${o.seconds + 15} s`, raw: res.output };
    if (res.code !== 0)
      return { failure: `h2load exited with ${res.code}: ${res.output.trim().split('\n').pop()}`, raw: res.output };
    const h2 = parseH2load(res.output);
    if (h2.done === 0) return { failure: `no response in ${o.seconds} s (the target stalled)`, raw: res.output };
    let log = '';
    try {
      log = readFileSync(o.logFile, 'utf8');
    } catch {
      // no log: percentiles stay empty
    }
    const { p50Ms, p99Ms } = logPercentiles(log);
    return {
      h2,
      raw: res.output,
      result: { reqPerSec: h2.reqPerSec, requests: h2.done, p50Ms, p99Ms, errors: h2.errors, timeouts: h2.timeout },
    };
  } catch (err) {
    return { failure: (err as Error).message, raw: res.output };
  } finally {
    rmSync(o.logFile, { force: true });
  }
}
