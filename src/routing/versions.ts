// Where a request's API version comes from (`versioning:`), compiled once: a header, a media type in Accept
// (`application/vnd.acme.v{version}+json`), a `/v{version}/` path prefix. Reading scans the raw strings and
// allocates only the version it returns (and the rest of the path for the path source).
import type { IncomingHttpHeaders } from 'node:http';
import type { VersioningConfig, VersionSource } from '../config/versioning-schema.ts';

export interface VersionPolicy {
  readonly from: readonly VersionSource[];
  readonly header: string;
  /** The media type around `{version}`, lower case (media types compare case-insensitively). */
  readonly mediaPrefix: string;
  readonly mediaSuffix: string;
  readonly fallback: string | undefined;
}

export function compileVersionPolicy(config: VersioningConfig): VersionPolicy {
  const [prefix, suffix] = (config.mediaType ?? '{version}').toLowerCase().split('{version}');
  return {
    from: config.from,
    header: config.header,
    mediaPrefix: prefix!,
    mediaSuffix: suffix!,
    fallback: config.default,
  };
}

/** A version character: letters, digits, `.`, `_`, `-` (the schema's versionToken). */
function versionChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45;
}

function isVersion(s: string, start: number, end: number): boolean {
  if (end <= start || end - start > 64) return false;
  for (let i = start; i < end; i++) if (!versionChar(s.charCodeAt(i))) return false;
  return true;
}

export function versionFromHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const raw = headers[name];
  const value = typeof raw === 'string' ? raw.trim() : undefined;
  return value === undefined || value === '' ? undefined : value;
}

/** The version of the first media range in Accept written as the template (parameters such as q ignored). */
export function versionFromAccept(accept: string | undefined, prefix: string, suffix: string): string | undefined {
  if (accept === undefined) return undefined;
  let start = 0;
  while (start < accept.length) {
    let end = accept.indexOf(',', start);
    if (end === -1) end = accept.length;
    let a = start;
    while (a < end && (accept.charCodeAt(a) === 32 || accept.charCodeAt(a) === 9)) a++;
    let b = accept.indexOf(';', a);
    if (b === -1 || b > end) b = end;
    while (b > a && (accept.charCodeAt(b - 1) === 32 || accept.charCodeAt(b - 1) === 9)) b--;
    const vStart = a + prefix.length;
    const vEnd = b - suffix.length;
    if (
      vEnd > vStart &&
      accept.slice(a, vStart).toLowerCase() === prefix &&
      accept.slice(vEnd, b).toLowerCase() === suffix &&
      isVersion(accept, vStart, vEnd)
    )
      return accept.slice(vStart, vEnd);
    start = end + 1;
  }
  return undefined;
}

/** `/v2/users` → version `2`, rest `/users`; `/v2` → rest `/`; undefined when the path has no such prefix. */
export function versionFromPath(path: string): { version: string; rest: string } | undefined {
  if (path.charCodeAt(1) !== 118 /* v */) return undefined;
  let end = path.indexOf('/', 2);
  if (end === -1) end = path.length;
  if (!isVersion(path, 2, end)) return undefined;
  return { version: path.slice(2, end), rest: end === path.length ? '/' : path.slice(end) };
}
