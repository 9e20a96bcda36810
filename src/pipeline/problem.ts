// RFC 9457 problem details for every error the gateway answers itself. Never names a backend address.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ERRORS, type ErrorCode } from '../errors.ts';
import type { Reply } from '../request-context.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export function problemBody(code: ErrorCode, detail?: string, requestId?: string, statusOverride?: number): string {
  const spec = ERRORS[code];
  return JSON.stringify({
    type: `urn:turnpike:error:${code}`,
    title: spec.title,
    status: statusOverride ?? spec.status,
    code,
    ...(detail ? { detail } : {}),
    ...(requestId ? { requestId } : {}),
  });
}

export function problemReply(
  code: ErrorCode,
  detail?: string,
  requestId?: string,
  extraHeaders?: Record<string, string | string[]>,
): Reply {
  return {
    status: ERRORS[code].status,
    headers: { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store', ...extraHeaders },
    body: problemBody(code, detail, requestId),
    code,
  };
}

/** Writes a problem on a raw socket (errors raised before Node made a request object) and closes it. */
export function writeRawProblem(socket: Socket, code: ErrorCode, detail?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = problemBody(code, detail);
  const status = ERRORS[code].status;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: ${PROBLEM_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\ncache-control: no-store\r\n\r\n${body}`,
  );
}
