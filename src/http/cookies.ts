// The Cookie request header (RFC 6265 4.2, 5.4), read the one way every part of Turnpike reads it (sticky
// sessions, the consistent-hash key, jwt, the cache's bypass policy). The rule:
// - `;` separates cookie pairs; each pair is trimmed of OWS (SP, HTAB); empty pairs are skipped.
// - The first `=` separates the name from the value. Names compare exactly: case-sensitive, and nothing is
//   trimmed around `=` (`a =1` is a cookie called `a `). A pair without `=` is no cookie: lookups skip it.
// - A name sent more than once: lookups see its first occurrence (as Envoy, Go's net/http and the `cookie`
//   package a Node upstream uses do).
// - `cookieValue` strips one pair of DQUOTEs around a value (RFC 6265 4.1.1's quoted cookie-value, as Envoy
//   does); `forEachCookie` gives values as sent, for policies that must see every byte (the cache).

/**
 * Calls `visit(state, name, value)` for each non-empty pair in order; `value` is undefined for a pair without
 * `=` (then `name` is the whole pair). `visit` returns false to stop; so does this function, then.
 */
export function forEachCookie<S>(
  header: string,
  state: S,
  visit: (state: S, name: string, value: string | undefined) => boolean,
): boolean {
  const len = header.length;
  let from = 0;
  while (from < len) {
    let end = header.indexOf(';', from);
    if (end === -1) end = len;
    let a = from;
    let b = end;
    while (a < b && isOws(header.charCodeAt(a))) a++;
    while (b > a && isOws(header.charCodeAt(b - 1))) b--;
    from = end + 1;
    if (a === b) continue;
    let eq = a;
    while (eq < b && header.charCodeAt(eq) !== 61 /* = */) eq++; // within the pair: linear in the header
    const go =
      eq === b
        ? visit(state, header.slice(a, b), undefined)
        : visit(state, header.slice(a, eq), header.slice(eq + 1, b));
    if (!go) return false;
  }
  return true;
}

/** The value of the first cookie called `name` (DQUOTEs around it removed), or undefined; allocates only it. */
export function cookieValue(header: string, name: string): string | undefined {
  const len = header.length;
  const n = name.length;
  let from = 0;
  while (from < len) {
    let end = header.indexOf(';', from);
    if (end === -1) end = len;
    let a = from;
    while (a < end && isOws(header.charCodeAt(a))) a++;
    // The name, then `=` (a name holding `=` matches nothing, as in forEachCookie, where the first `=` ends it).
    if (header.charCodeAt(a + n) === 61 /* = */ && a + n < end && header.startsWith(name, a) && !name.includes('=')) {
      let b = end;
      while (b > a + n + 1 && isOws(header.charCodeAt(b - 1))) b--;
      let v = a + n + 1;
      if (b - v >= 2 && header.charCodeAt(v) === 34 /* " */ && header.charCodeAt(b - 1) === 34) {
        v++;
        b--;
      }
      return header.slice(v, b);
    }
    from = end + 1;
  }
  return undefined;
}

/** The header without any cookie called `name`; the other pairs trimmed and joined with `; ` ('' if none). */
export function removeCookie(header: string, name: string): string {
  const state = { name, out: '' };
  forEachCookie(header, state, keepOther);
  return state.out;
}

function keepOther(s: { readonly name: string; out: string }, name: string, value: string | undefined): boolean {
  if (value !== undefined && name === s.name) return true;
  s.out += (s.out === '' ? '' : '; ') + (value === undefined ? name : `${name}=${value}`);
  return true;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}
