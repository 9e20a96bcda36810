// Running wrk and parsing its text output (bench/system.ts finds and installs it).
import { runCommand } from './children.ts';

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly socketErrors: { connect: number; read: number; write: number; timeout: number };
  readonly non2xx: number;
  /** Socket errors plus non-2xx/3xx responses. */
  readonly errors: number;
}

export interface WrkRun {
  readonly result?: WrkResult;
  /** Set when wrk failed or its output could not be read; the raw output is kept for the JSON file. */
  readonly failure?: string;
  readonly raw: string;
}

/** wrk prints durations as 812.00us, 1.23ms, 2.00s or 1.50m. */
export function toMs(text: string): number {
  const m = text.match(/^([\d.]+)(us|ms|s|m|h)$/);
  if (!m) return NaN;
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(m[1]) * scale[m[2]!]!;
}

export function parseWrk(out: string): WrkResult {
  const rps = out.match(/^Requests\/sec:\s+([\d.]+)/m);
  const total = out.match(/^\s*(\d+) requests in ([\d.]+\w+),/m);
  const p50 = out.match(/^\s+50(?:\.000)?%\s+(\S+)/m);
  const p99 = out.match(/^\s+99(?:\.000)?%\s+(\S+)/m);
  if (!rps || !total || !p50 || !p99)
    throw new Error('could not find Requests/sec, request count or the --latency distribution');
  const sock = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const socketErrors = {
    connect: Number(sock?.[1] ?? 0),
    read: Number(sock?.[2] ?? 0),
    write: Number(sock?.[3] ?? 0),
    timeout: Number(sock?.[4] ?? 0),
  };
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return {
    requests: Number(total[1]),
    seconds: toMs(total[2]!) / 1000,
    reqPerSec: Number(rps[1]),
    p50Ms: toMs(p50[1]!),
    p99Ms: toMs(p99[1]!),
    socketErrors,
    non2xx,
    errors: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout + non2xx,
  };
}

export interface WrkOptions {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads?: number;
  /** Extra request headers, sent on every request (wrk's `-H 'name: value'`): credentials for the gateway cases. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** One wrk run; never throws for wrk's own failures, and is killed if it overruns by 15 s. */
export async function runWrk(o: WrkOptions): Promise<WrkRun> {
  const headers = Object.entries(o.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const args = [`-t${o.threads ?? 2}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', ...headers, o.url];
  const res = await runCommand('wrk', args, (o.seconds + 15) * 1000);
  if (res.timedOut) return { failure: `wrk did not finish within ${o.seconds + 15} s`, raw: res.output };
  if (res.code !== 0)
    return { failure: `wrk exited with ${res.code}: ${res.output.trim().split('\n').pop()}`, raw: res.output };
  try {
    const result = parseWrk(res.output);
    // wrk reports a window without a single response as 0 req/s and 0 errors: the target stalled.
    if (result.requests === 0)
      return { failure: `no response in ${o.seconds} s (the target stalled)`, raw: res.output };
    return { result, raw: res.output };
  } catch (err) {
    return { failure: (err as Error).message, raw: res.output };
  }
}
