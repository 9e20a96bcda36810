// One active health probe of one target: an HTTP GET or a bare TCP connect, bounded by a timeout and abortable.
// Every probe opens a fresh connection (no agent, no keep-alive) so a backend that stops accepting is noticed.
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

export interface ProbeSettings {
  readonly type: 'http' | 'tcp';
  readonly path: string;
  readonly expectStatus: readonly [number, number];
  readonly timeout: number;
  readonly host?: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** Why: 'status 503', 'connected', an error code such as 'ECONNREFUSED', 'timeout' or 'aborted'. */
  readonly reason: string;
  /** Time to the verdict (connect, or the response head), in ms. */
  readonly ms: number;
}

/** The body of a health response is read and dropped; past this size the connection is cut instead. */
export const MAX_BODY_BYTES = 64 * 1024;

export const USER_AGENT = 'turnpike-health-check';

function errorReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? e?.message ?? String(err);
}

/** URL.hostname keeps IPv6 brackets; sockets want the bare address. */
function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

export function probe(url: URL, settings: ProbeSettings, signal: AbortSignal): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let verdict: ProbeResult | undefined;
    let done = false;
    let cleanup = () => {};
    // The verdict is fixed once (first of: status, connect, error, timeout, abort); the promise settles when the
    // connection is finished with, so a probe and its successor never overlap.
    const decide = (ok: boolean, reason: string) => {
      verdict ??= { ok, reason, ms: Math.round(performance.now() - start) };
    };
    const finish = (ok: boolean, reason: string) => {
      decide(ok, reason);
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      cleanup();
      resolve(verdict!);
    };
    // One deadline for connect + response head; after the head it only bounds the body drain (verdict kept).
    const timer = setTimeout(() => finish(false, 'timeout'), settings.timeout);
    timer.unref();
    const onAbort = () => finish(false, 'aborted');
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort);

    try {
      if (settings.type === 'tcp') tcp(url, finish, (c) => (cleanup = c));
      else http(url, settings, decide, finish, (c) => (cleanup = c));
    } catch (err) {
      finish(false, errorReason(err)); // a bad port, path or header throws at once
    }
  });
}

type Finish = (ok: boolean, reason: string) => void;
type OnCleanup = (cleanup: () => void) => void;

/** Passes on connect; the socket is destroyed right after by the cleanup. */
function tcp(url: URL, finish: Finish, onCleanup: OnCleanup): void {
  const socket = connect({ host: hostOf(url), port: portOf(url) });
  socket.unref();
  onCleanup(() => socket.destroy());
  socket.on('connect', () => finish(true, 'connected'));
  socket.on('error', (err) => finish(false, errorReason(err)));
}

function http(url: URL, settings: ProbeSettings, decide: Finish, finish: Finish, onCleanup: OnCleanup): void {
  const options: RequestOptions = {
    host: hostOf(url),
    port: portOf(url),
    method: 'GET',
    path: settings.path,
    agent: false,
    headers: { host: settings.host ?? url.host, 'user-agent': USER_AGENT, connection: 'close', accept: '*/*' },
  };
  // A health check asks "is it up", not "is its certificate valid": no verification for now.
  const req =
    url.protocol === 'https:' ? httpsRequest({ ...options, rejectUnauthorized: false }) : httpRequest(options);
  onCleanup(() => req.destroy());
  req.on('socket', (s) => s.unref());
  req.on('error', (err) => finish(false, errorReason(err)));
  req.on('response', (res) => {
    const status = res.statusCode ?? 0;
    const [lo, hi] = settings.expectStatus;
    decide(status >= lo && status <= hi, `status ${status}`);
    // The body is drained (so the server is not left writing into a dead socket) up to a bound; the verdict
    // is already fixed, the reason given here is ignored.
    const settle = () => finish(false, 'body');
    let bytes = 0;
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_BODY_BYTES) settle();
    });
    res.on('error', settle);
    res.on('end', settle);
    res.on('close', settle);
  });
  req.end();
}
