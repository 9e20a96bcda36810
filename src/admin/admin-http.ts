// What every admin endpoint answers with: JSON, problem+json, and bounded JSON/YAML request bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { ERRORS, TurnpikeError, type ErrorCode } from '../errors.ts';
import { PROBLEM_TYPE, problemBody } from '../pipeline/problem.ts';

/** Request bodies: 64 KiB, except a candidate config (POST /api/config/validate). */
export const BODY_LIMIT = 64 * 1024;
export const CONFIG_BODY_LIMIT = 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function sendProblem(
  res: ServerResponse,
  code: ErrorCode,
  detail?: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(code, detail);
  res.writeHead(ERRORS[code].status, {
    'content-type': PROBLEM_TYPE,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/** The body as text, refusing more than `limit` bytes (413 TP_BODY_TOO_LARGE). */
export async function readText(req: IncomingMessage, limit = BODY_LIMIT): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new TurnpikeError('TP_BODY_TOO_LARGE', `at most ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new TurnpikeError('TP_BODY_TOO_LARGE', `at most ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A JSON body validated by `schema` (400 TP_BAD_REQUEST naming the first problem). */
export async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = await readText(req);
  let value: unknown;
  try {
    value = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new TurnpikeError('TP_BAD_REQUEST', 'the body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new TurnpikeError('TP_BAD_REQUEST', `${at}${issue.message}`);
  }
  return parsed.data;
}
