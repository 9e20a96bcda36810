// Percent-decoding (RFC 3986 2.1), the one way Turnpike reads an escaped URI component. Never throws: text that
// does not decode (a `%` not followed by two hex digits, escapes that are not UTF-8) is kept as it was sent, as
// every reader did before this module; nothing is allocated when there is nothing to decode.

/**
 * One URI component (a query name or value, a path parameter), escapes decoded as UTF-8. `plusIsSpace` reads `+`
 * as a space first (application/x-www-form-urlencoded: query strings); the `+` rule holds even when the escapes
 * do not decode, since it is its own step (WHATWG URLSearchParams replaces `+` before percent-decoding too).
 */
export function percentDecode(s: string, plusIsSpace: boolean): string {
  if (plusIsSpace && s.indexOf('+') !== -1) s = s.replaceAll('+', ' ');
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A path (or a path segment) as `decodeURI` reads it: escapes of reserved characters (`%2F`, `%3F`, `%23` ...)
 * stay escaped, so a decoded path keeps its segments. Same failure rule as `percentDecode`.
 */
export function percentDecodePath(s: string): string {
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURI(s);
  } catch {
    return s;
  }
}

/** Whether `s` holds something `percentDecode` would change between `from` and `to` (`%`, or `+` as a space). */
export function hasEscape(s: string, from: number, to: number, plusIsSpace: boolean): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ || (plusIsSpace && c === 43) /* + */) return true;
  }
  return false;
}
