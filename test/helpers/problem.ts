// The gateway's own error answers: RFC 9457 problem details with a stable code (src/errors.ts).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * `r` is a problem+json answer with this status and code, a title, no stack trace, and none of `secrets` (backend
 * addresses, say) in its body.
 */
export function assertProblem(
  r: { status: number; headers: IncomingHttpHeaders; body: string | Buffer },
  status: number,
  code: string,
  secrets: readonly string[] = [],
): void {
  const text = r.body.toString();
  assert.equal(r.status, status, text);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(text);
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(typeof body.title, 'string');
  for (const s of secrets) assert.ok(!text.includes(s), `problem body leaks ${s}: ${text}`);
  assert.ok(!/at .*\.(ts|js):\d+/.test(text), `stack trace in ${text}`);
}
