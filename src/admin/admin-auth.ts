// Bearer tokens for the admin API: compared in constant time, and named in audit lines by a short hash only.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The Bearer token of `req`, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1];
}

/** Whether `token` is one of `tokens`; every token is compared (digests of equal length), so timing says nothing. */
export function tokenMatches(token: string | undefined, tokens: readonly string[]): boolean {
  if (token === undefined) return false;
  const given = digest(token);
  let ok = false;
  for (const t of tokens) ok = timingSafeEqual(given, digest(t)) || ok;
  return ok;
}

/** Names a caller in the audit log: the first 12 hex digits of its token's SHA-256 ("none" without a token). */
export function callerId(req: IncomingMessage): string {
  const token = bearerToken(req);
  return token === undefined ? 'none' : digest(token).toString('hex').slice(0, 12);
}
