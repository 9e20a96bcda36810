// Client conditional requests answered from a stored response (RFC 9110 13.1.2, 13.1.3): If-None-Match with the
// weak comparison, else If-Modified-Since against Last-Modified.
import type { IncomingHttpHeaders } from 'node:http';

export function isConditional(headers: IncomingHttpHeaders): boolean {
  return headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined;
}

/** True when the client already holds this response: answer 304. */
export function notModified(request: IncomingHttpHeaders, stored: Record<string, string | string[]>): boolean {
  const ifNoneMatch = request['if-none-match'];
  if (ifNoneMatch !== undefined) {
    const etag = stored.etag;
    if (typeof etag !== 'string') return false;
    if (ifNoneMatch.trim() === '*') return true;
    const opaque = stripWeak(etag);
    return ifNoneMatch.split(',').some((tag) => stripWeak(tag.trim()) === opaque);
  }
  const ifModifiedSince = request['if-modified-since'];
  const lastModified = stored['last-modified'];
  if (ifModifiedSince === undefined || typeof lastModified !== 'string') return false;
  const since = Date.parse(ifModifiedSince);
  const modified = Date.parse(lastModified);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

function stripWeak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** Fields a 304 carries (RFC 9110 15.4.5): the validators and caching metadata, not the representation's. */
const NOT_MODIFIED_FIELDS = [
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'last-modified',
  'vary',
  'age',
];

export function notModifiedHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of NOT_MODIFIED_FIELDS) if (headers[name] !== undefined) out[name] = headers[name]!;
  return out;
}
