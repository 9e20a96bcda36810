// The call forward-auth makes: one request to the authorization service through an undici Pool per auth origin
// (kept across reloads while a config names that origin), bounded by `timeout` as a whole, its answer read
// within a fixed size. What comes back is a Decision; what fails is an AuthCallFailed (down, slow, too big).
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType } from 'undici';

// Only the Pool and the request API, not undici's index (see src/upstream/target.ts for why).
const require = createRequire(import.meta.url);
const Pool = require('undici/lib/dispatcher/pool.js') as typeof PoolType;
const apiRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  opts: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** An auth service's answer body is a denial page or a problem: more than this is not an answer. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** Headers of a denial that reach the client with its status and body (a challenge, a login redirect). */
const DENIAL_HEADERS = ['content-type', 'www-authenticate', 'location', 'set-cookie', 'retry-after'] as const;

export class AuthCallFailed extends Error {}

export interface Decision {
  readonly allow: boolean;
  readonly status: number;
  /** allow: the `copyHeaders` the service answered (name, value pairs); deny: the headers relayed to the client. */
  readonly headers: readonly (readonly [string, string | string[]])[];
  readonly body: Buffer;
}

export interface AuthCall {
  readonly method: string;
  readonly headers: string[];
  readonly body: Buffer | null;
}

export function newAuthPool(origin: string): PoolType {
  // Bounded: a slow auth service queues calls rather than opening a connection per waiting request; the
  // queue is bounded by each call's timeout.
  return new Pool(origin, { connections: 128, keepAliveTimeout: 4_000 });
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      throw new AuthCallFailed(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function picked(headers: Dispatcher.ResponseData['headers'], names: readonly string[]): [string, string | string[]][] {
  const out: [string, string | string[]][] = [];
  for (const name of names) {
    const v = headers[name];
    if (v !== undefined) out.push([name, v]);
  }
  return out;
}

/** Asks the service at `path` of `pool`; rejects with AuthCallFailed when it is down, slow or answers too much. */
export async function askAuthService(
  pool: PoolType,
  path: string,
  call: AuthCall,
  timeout: number,
  copyHeaders: readonly string[],
): Promise<Decision> {
  const signal = AbortSignal.timeout(timeout);
  try {
    const res = await apiRequest.call(pool, {
      path,
      method: call.method as Dispatcher.HttpMethod,
      headers: call.headers,
      body: call.body,
      signal,
    });
    const body = await readCapped(res.body);
    const allow = res.statusCode >= 200 && res.statusCode < 300;
    return {
      allow,
      status: res.statusCode,
      headers: picked(res.headers, allow ? copyHeaders : DENIAL_HEADERS),
      body: allow ? Buffer.alloc(0) : body,
    };
  } catch (err) {
    if (err instanceof AuthCallFailed) throw err;
    if (signal.aborted) throw new AuthCallFailed(`no answer within ${timeout}ms`);
    const e = err as Error & { code?: string };
    throw new AuthCallFailed(e.code ?? e.message);
  }
}
