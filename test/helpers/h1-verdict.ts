// Verdicts for raw HTTP/1.1 attacks (test/attacks/): what the client read, parsed, and what the backend received
// meanwhile. A refusal is only a refusal if nothing of the request reached the backend.
import assert from 'node:assert/strict';
import { rawExchange } from './raw.ts';
import type { Arrival, RecordingBackend } from './recording-backend.ts';

export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated names joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface RawResult {
  /** Every response in the bytes read, in order. */
  readonly responses: RawResponse[];
  /** The server closed the connection. */
  readonly closed: boolean;
  readonly text: string;
}

/** Splits the bytes a client read into responses (Content-Length framed, as the gateway's answers are). */
export function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const lines = text.slice(at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const length = Number(headers['content-length'] ?? 0);
    out.push({ status, headers, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

/** Sends `payload` on a fresh connection; resolves when the gateway closes it (or after `timeoutMs`). */
export async function exchange(port: number, payload: string | Buffer, timeoutMs = 3000): Promise<RawResult> {
  const { text, closed } = await rawExchange(port, payload, timeoutMs);
  return { responses: parseResponses(text), closed, text };
}

/**
 * Sends a plain request after an attack and waits for the backend to get it: whatever the gateway forwarded of the
 * attack was dispatched before, so the arrivals since `before` are the attack's plus this one.
 */
export async function arrivalsSince(port: number, backend: RecordingBackend, before: number): Promise<Arrival[]> {
  const marker = `/public/canary-${before}-${Math.random().toString(36).slice(2)}`;
  const r = await exchange(port, `GET ${marker} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  assert.equal(r.responses[0]?.status, 200, r.text);
  const since = backend.arrivals.slice(before);
  assert.ok(
    since.some((a) => a.url === marker),
    'the canary request reached the backend',
  );
  return since.filter((a) => a.url !== marker);
}

/**
 * `payload` is answered with exactly one problem+json response of `status` and `code`, the connection is closed,
 * and the backend received none of it.
 */
export async function assertRefused(
  port: number,
  backend: RecordingBackend,
  payload: string | Buffer,
  status: number,
  code?: string,
  options: RefusalOptions = {},
): Promise<RawResponse> {
  try {
    return await refused(port, backend, payload, status, code, options);
  } catch (err) {
    // Name the variant: these run in loops.
    const label = JSON.stringify(payload.toString().slice(0, 200));
    throw new assert.AssertionError({ message: `${label}: ${(err as Error).message}` });
  }
}

export interface RefusalOptions {
  /**
   * The error is in the body, which the gateway streams: the head may already have gone upstream. Then the upstream
   * request must have been aborted (the backend never saw it complete), and nothing after the error went upstream.
   */
  readonly midBody?: boolean;
}

async function refused(
  port: number,
  backend: RecordingBackend,
  payload: string | Buffer,
  status: number,
  code: string | undefined,
  options: RefusalOptions,
): Promise<RawResponse> {
  const before = backend.arrivals.length;
  const lengths = backend.raw.map((t) => t.length);
  const r = await exchange(port, payload);
  assert.equal(r.responses.length, 1, `one response, got: ${JSON.stringify(r.text.slice(0, 400))}`);
  const res = r.responses[0]!;
  assert.equal(res.status, status, r.text.slice(0, 400));
  assert.equal(res.headers['content-type'], 'application/problem+json', r.text.slice(0, 400));
  if (code !== undefined) assert.equal(JSON.parse(res.body).code, code);
  assert.equal(r.closed, true, 'the gateway closes the connection');
  const forwarded = await arrivalsSince(port, backend, before);
  const sent = backend.raw.map((t, i) => t.slice(lengths[i] ?? 0)).join('');
  if (options.midBody && forwarded.length > 0) {
    await backend.untilArrivals(backend.arrivals.length);
    const settled = backend.arrivals.slice(before).filter((a) => !a.url.startsWith('/public/canary-'));
    assert.equal(settled.length, 1, 'at most the one request whose body broke');
    assert.equal(settled[0]!.complete, false, 'the upstream request was aborted, never completed');
    assert.equal(sent.match(/ HTTP\/1\.1\r\n/g)?.length, 2, sent);
    return res;
  }
  assert.deepEqual(
    forwarded.map((a) => `${a.method} ${a.url}`),
    [],
    'nothing of the refused request reached the backend',
  );
  // Byte for byte: the only request head that went upstream since is the canary's.
  assert.equal(sent.match(/ HTTP\/1\.1\r\n/g)?.length, 1, sent);
  return res;
}
