// Splits a request target into path and query and normalises the path once, so the path the router, the ACLs
// and the cache key see is byte for byte the path forwarded: dot segments removed (RFC 3986 §5.2.4), escaped
// unreserved characters decoded (§6.2.2.2), and every form a backend could read as another path than the
// gateway did (`//admin`, `..%2f`, `..;/`, `%00`, `\`, overlong UTF-8) merged or refused per the listener's policy.

export interface RequestTarget {
  readonly path: string;
  readonly query: string;
  /** The host[:port] of an absolute-form target, which replaces the Host header (RFC 9112 §3.2.2). */
  readonly authority?: string;
}

/** Envoy's path_with_escaped_slashes_action: refuse `%2F`/`%5C`, keep them escaped, or decode them to `/`. */
export type EscapedSlashes = 'reject' | 'keep' | 'unescape';

/** How a listener reads paths (`limits.mergeSlashes`, `escapedSlashes`, `pathParameters`), compiled at load. */
export interface PathPolicy {
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashes;
  /** Whether a `;` (a path parameter: Tomcat and Spring strip `;jsessionid=x`) may appear in the path. */
  readonly pathParameters: boolean;
}

export const STRICT_PATHS: PathPolicy = { mergeSlashes: true, escapedSlashes: 'reject', pathParameters: false };

/** The target, or why it is refused (answered 400 TP_BAD_PATH; TP_BAD_REQUEST for a target that is no path). */
export function parseRequestTarget(url: string, policy: PathPolicy = STRICT_PATHS): RequestTarget | string {
  if (url.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (sent to proxies): path, query, and the authority that stands for Host.
    if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) return NOT_A_PATH;
    const u = new URL(url);
    // userinfo in a request target is deprecated and only ever confuses who the request is for.
    if (u.username !== '' || u.password !== '' || u.host === '') return NOT_A_PATH;
    // The WHATWG parser has already read `\` as `/` and removed dot segments: check what was sent instead.
    const start = url.indexOf('/', url.indexOf('//') + 2);
    const inner = parseRequestTarget(start === -1 ? '/' : url.slice(start), policy);
    return typeof inner === 'string' ? inner : { path: inner.path, query: inner.query, authority: u.host };
  }
  const q = url.indexOf('?');
  let path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (!NEEDS_WORK.test(path)) return { path, query };
  if (path.includes('\\')) return 'a path may not contain a backslash';
  if (path.includes('%')) {
    const decoded = decodeEscapes(path, policy.escapedSlashes);
    if (decoded.startsWith(REFUSED)) return decoded.slice(REFUSED.length);
    path = decoded;
  }
  if (!policy.pathParameters && path.includes(';')) return 'a path may not contain ";" (path parameters)';
  if (policy.mergeSlashes && path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  if (path.includes('/.')) {
    path = removeDotSegments(path);
    if (path === BAD_DOT) return 'a path may not have a dot segment with parameters ("..;")';
  }
  return { path, query };
}

export const NOT_A_PATH = 'the request target must be a path';
const NEEDS_WORK = /[%\\;]|\/\/|\/\./;
const REFUSED = '\0';
const BAD_DOT = '\0dot';
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Decodes escaped unreserved characters and applies the slash policy; any other escape stays as sent. Refused
 * (REFUSED + why): a `%` without two hex digits, control characters, a segment starting or ending with an escaped
 * space (Spring's trimmed tokens, CVE-2016-5007), escapes that are not UTF-8 (overlong `%c0%ae` is `.` to some
 * decoders), and under `reject` escaped slashes and double-escaped slashes and dots (`%252f`, `%252e`).
 */
function decodeEscapes(path: string, slashes: EscapedSlashes): string {
  let out = '';
  let last = 0;
  // A run of escaped bytes >= 0x80 (one character or more) must be UTF-8 on its own.
  let bytes: number[] | null = null;
  let runEnd = -1;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i)) {
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return REFUSED + 'a "%" in the path is not followed by two hex digits';
    const byte = parseInt(hex, 16);
    let replace: string | null = null;
    if (byte < 0x20 || byte === 0x7f) return REFUSED + 'a path may not contain an escaped control character';
    if (byte === 0x2f || byte === 0x5c) {
      if (slashes === 'reject') return REFUSED + 'a path may not contain an escaped slash (%2F or %5C)';
      if (slashes === 'unescape') replace = '/';
    } else if (byte === 0x25 && slashes === 'reject' && /^(?:2[eEfF]|5[cC])$/.test(path.slice(i + 3, i + 5))) {
      return REFUSED + 'a path may not contain a double-escaped slash or dot';
    } else if (byte === 0x20) {
      const before = path.charCodeAt(i - 1);
      const after = path.charCodeAt(i + 3);
      if (before === 47 || after === 47 || Number.isNaN(after) || i + 3 === path.length)
        return REFUSED + 'a path segment may not start or end with an escaped space';
    } else if (byte < 0x80 && UNRESERVED.test(String.fromCharCode(byte))) {
      replace = String.fromCharCode(byte);
    } else if (byte >= 0x80) {
      if (runEnd !== i && bytes !== null && !isUtf8(bytes)) return REFUSED + 'the escapes in the path are not UTF-8';
      if (runEnd !== i) bytes = [];
      bytes!.push(byte);
      runEnd = i + 3;
    }
    if (replace !== null) {
      out += path.slice(last, i) + replace;
      last = i + 3;
    }
    i += 3;
  }
  if (bytes !== null && !isUtf8(bytes)) return REFUSED + 'the escapes in the path are not UTF-8';
  return last === 0 ? path : out + path.slice(last);
}

/** Whether the escaped bytes of a path, taken in order, form valid UTF-8 (TextDecoder refuses overlong forms). */
function isUtf8(bytes: number[]): boolean {
  try {
    UTF8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * RFC 3986 §5.2.4. A `..;x` or `.;x` segment (Tomcat reads it as `..`) yields BAD_DOT: it is refused, whatever
 * the parameter policy, since no path needs one.
 */
export function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    if (seg.startsWith('.;') || seg.startsWith('..;')) return BAD_DOT;
    if (seg === '.') {
      if (i === input.length - 1) out.push('');
      continue;
    }
    if (seg === '..') {
      out.pop();
      if (i === input.length - 1) out.push('');
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}
