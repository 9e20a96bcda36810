// Small loopback helpers: free ports, one-shot GETs, readiness polling.
import http from 'node:http';
import net from 'node:net';

/** Asks the kernel for a free port, releases it, and returns the number for a child to bind. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface GetResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly bodyLength: number;
}

/** A single GET of a small text body (a /metrics scrape), bounded by `timeoutMs`. */
export function httpGetText(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** A single GET on a fresh connection (no agent), bounded by `timeoutMs`, with optional extra request headers. */
export function httpGet(
  url: string,
  timeoutMs: number,
  headers: Readonly<Record<string, string>> = {},
): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs, headers }, (res) => {
      let bodyLength = 0;
      res.on('data', (chunk: Buffer) => (bodyLength += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bodyLength }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Polls `url` until it answers 200. `gone()` lets the caller stop early when the server process has
 * died, so a crash is reported at once instead of after the full timeout.
 */
export function waitFor200(url: string, timeoutMs: number, gone: () => boolean = () => false): Promise<void> {
  return waitUntil(
    url,
    async () => {
      const res = await httpGet(url, 1000);
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    },
    timeoutMs,
    gone,
  );
}

/** Calls `probe` every 100 ms until it resolves (readiness over TLS, HTTP/2 or a raw TCP protocol). */
export async function waitUntil(
  what: string,
  probe: () => Promise<void>,
  timeoutMs: number,
  gone: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (gone()) throw new Error(`process exited before ${what} answered`);
    try {
      await probe();
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer within ${timeoutMs / 1000} s (last: ${last})`);
}
