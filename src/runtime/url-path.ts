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
    // A non-empty authority right after `//`, and no `\`: the URL parser would read `http:///x` as host `x`.
    if (!/^https?:\/\/[^/?#\\]/i.test(url) || url.includes('\\') || !URL.canParse(url)) return NOT_A_PATH;
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

/** The value of a hex digit's char code, or -1. */
function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 32;
  return c >= 97 && c <= 102 ? c - 87 : -1;
}

/** ALPHA, DIGIT, `-`, `.`, `_`, `~` (RFC 3986 §2.3): escaping them changes nothing, so they are decoded. */
function unreserved(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f ||
    b === 0x7e
  );
}

/**
 * Decodes escaped unreserved characters and applies the slash policy; any other escape stays as sent. Refused
 * (REFUSED + why): a `%` without two hex digits, control characters, a segment starting or ending with an escaped
 * space (Spring's trimmed tokens, CVE-2016-5007), escapes that are not UTF-8 (overlong `%c0%ae` is `.` to some
 * decoders), and under `reject` escaped slashes and double-escaped slashes and dots (`%252f`, `%252e`).
 */
function decodeEscapes(path: string, slashes: EscapedSlashes): string {
  let out = '';
  let last = 0;
  // The escaped bytes >= 0x80 of the current run (one character or more), checked as UTF-8 when the run ends.
  const utf8 = UTF8_RUN.reset();
  let runEnd = -1;
  const n = path.length;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i)) {
    const hi = hex(path.charCodeAt(i + 1));
    const lo = hex(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return REFUSED + 'a "%" in the path is not followed by two hex digits';
    const byte = hi * 16 + lo;
    if (runEnd !== i && !utf8.complete()) return REFUSED + NOT_UTF8;
    let replace: string | null = null;
    if (byte < 0x20 || byte === 0x7f) return REFUSED + 'a path may not contain an escaped control character';
    if (byte === 0x2f || byte === 0x5c) {
      if (slashes === 'reject') return REFUSED + 'a path may not contain an escaped slash (%2F or %5C)';
      if (slashes === 'unescape') replace = '/';
    } else if (byte === 0x25 && slashes === 'reject' && escapesSlashOrDot(path, i + 3)) {
      return REFUSED + 'a path may not contain a double-escaped slash or dot';
    } else if (byte === 0x20) {
      if (path.charCodeAt(i - 1) === 47 || i + 3 === n || path.charCodeAt(i + 3) === 47)
        return REFUSED + 'a path segment may not start or end with an escaped space';
    } else if (byte < 0x80) {
      if (unreserved(byte)) replace = String.fromCharCode(byte);
    } else {
      if (!utf8.push(byte)) return REFUSED + NOT_UTF8;
      runEnd = i + 3;
    }
    if (replace !== null) {
      out += path.slice(last, i) + replace;
      last = i + 3;
    }
    i += 3;
  }
  if (!utf8.complete()) return REFUSED + NOT_UTF8;
  return last === 0 ? path : out + path.slice(last);
}

const NOT_UTF8 = 'the escapes in the path are not UTF-8';

/** Whether `path` at `at` reads `2e`, `2f` or `5c` (after a `%25`: a double-escaped dot or slash). */
function escapesSlashOrDot(path: string, at: number): boolean {
  const a = path.charCodeAt(at);
  const b = path.charCodeAt(at + 1) | 32;
  return (a === 50 && (b === 101 || b === 102)) || (a === 53 && b === 99);
}

/** A UTF-8 validator fed one byte at a time (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
class Utf8Run {
  #need = 0;
  #low = 0x80;
  #high = 0xbf;

  push(b: number): boolean {
    if (this.#need === 0) {
      if (b >= 0xc2 && b <= 0xdf) this.#need = 1;
      else if (b >= 0xe0 && b <= 0xef) {
        this.#need = 2;
        if (b === 0xe0) this.#low = 0xa0;
        else if (b === 0xed) this.#high = 0x9f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        this.#need = 3;
        if (b === 0xf0) this.#low = 0x90;
        else if (b === 0xf4) this.#high = 0x8f;
      } else return false;
      return true;
    }
    if (b < this.#low || b > this.#high) return false;
    this.#low = 0x80;
    this.#high = 0xbf;
    this.#need--;
    return true;
  }

  complete(): boolean {
    return this.#need === 0;
  }

  reset(): this {
    this.#need = 0;
    this.#low = 0x80;
    this.#high = 0xbf;
    return this;
  }
}
/** One for the module: paths are read synchronously, one at a time. */
const UTF8_RUN = new Utf8Run();

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
