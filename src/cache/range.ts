// Single byte ranges answered from a stored body (RFC 9110 14), as NGINX serves ranges from its cache. Several
// ranges, an unparsable header or an If-Range that no longer matches get the whole response instead (allowed).
import type { IncomingHttpHeaders } from 'node:http';

export type RangeAnswer = { readonly start: number; readonly end: number } | 'unsatisfiable' | null;

/** The one range to send of a `length`-byte body, 'unsatisfiable' (416), or null for the whole body. */
export function rangeOf(
  request: IncomingHttpHeaders,
  length: number,
  stored: Record<string, string | string[]>,
): RangeAnswer {
  const header = request.range;
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return null;
  const ifRange = request['if-range'] === undefined ? undefined : String(request['if-range']);
  // If-Range takes a strong validator: an entity tag (never weak) or the exact Last-Modified date.
  if (
    ifRange !== undefined &&
    !(ifRange.startsWith('"') ? ifRange === stored.etag : ifRange === stored['last-modified'])
  )
    return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, length - suffix);
    end = length - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null; // invalid: ignored (RFC 9110 14.1.1)
  }
  if (start >= length) return 'unsatisfiable';
  return { start, end };
}
