// Query strings (RFC 3986 3.4), read the one way every part of Turnpike reads them (route predicates, key-auth,
// jwt, the consistent-hash key). The rule, as WHATWG URLSearchParams, NGINX's $arg_NAME and Envoy read them:
// - `&` separates parameters (`;` does not); empty ones (`a&&b`) are skipped. The first `=` separates a name
//   from its value; a parameter without `=` has the value ''.
// - Names and values are percent-decoded as UTF-8 with `+` as a space (`percentDecode(s, true)`); one that does
//   not decode (`%zz`, escapes that are not UTF-8) is taken as sent, `+` still a space.
// - A name given more than once: a lookup sees its first occurrence (NGINX's $arg_NAME, Envoy's query matchers
//   and jwt_authn), `parseQuery` keeps every value in order, and removal or redaction applies to all of them.
// Every function takes the raw query with or without its leading `?` (one leading `?` is not part of it), and
// a rewrite keeps the other parameters byte for byte.
import { hasEscape, percentDecode } from './percent.ts';

/** Where the parameters start: after one leading `?`. */
function startOf(query: string): number {
  return query.charCodeAt(0) === 63 /* ? */ ? 1 : 0;
}

/** Whether the raw name `query[from, to)` is `name` once decoded; allocation-free unless it holds an escape. */
function nameIs(query: string, from: number, to: number, name: string): boolean {
  if (!hasEscape(query, from, to, true)) return to - from === name.length && query.startsWith(name, from);
  return percentDecode(query.slice(from, to), true) === name;
}

/**
 * The decoded value of the first parameter called `name` ('' when it has no `=`), or undefined when there is
 * none. Allocates only the value it returns (and a name that holds an escape); each byte is looked at once or
 * twice (values are skipped by indexOf).
 */
export function queryValue(query: string, name: string): string | undefined {
  const len = query.length;
  const n = name.length;
  // A raw name without escapes decodes to itself: it is `name` when the bytes are.
  const plain = !hasEscape(name, 0, n, true);
  let from = startOf(query);
  while (from < len) {
    let end = query.indexOf('&', from);
    if (end === -1) end = len;
    if (end > from) {
      if (plain && query.startsWith(name, from) && (from + n === end || query.charCodeAt(from + n) === 61) /* = */) {
        return from + n === end ? '' : percentDecode(query.slice(from + n + 1, end), true);
      }
      const eq = nameEnd(query, from, end);
      if (hasEscape(query, from, eq, true) && percentDecode(query.slice(from, eq), true) === name) {
        return eq === end ? '' : percentDecode(query.slice(eq + 1, end), true);
      }
    }
    from = end + 1;
  }
  return undefined;
}

/** Where the name of the parameter `query[from, end)` ends: its first `=`, or `end`. */
function nameEnd(query: string, from: number, end: number): number {
  for (let i = from; i < end; i++) if (query.charCodeAt(i) === 61 /* = */) return i;
  return end;
}

/** Calls `visit(state, from, eq, end)` for each non-empty parameter of `state.query` (`eq` -1 without `=`). */
function forEachParam<S extends { readonly query: string }>(
  state: S,
  visit: (state: S, from: number, eq: number, end: number) => void,
): void {
  const query = state.query;
  const len = query.length;
  let from = startOf(query);
  while (from < len) {
    let end = query.indexOf('&', from);
    if (end === -1) end = len;
    if (end > from) {
      const eq = nameEnd(query, from, end);
      visit(state, from, eq === end ? -1 : eq, end);
    }
    from = end + 1;
  }
}

interface Parsed {
  readonly query: string;
  readonly map: Map<string, string[]>;
}

function addParam(s: Parsed, from: number, eq: number, end: number): void {
  const name = percentDecode(s.query.slice(from, eq === -1 ? end : eq), true);
  const value = eq === -1 ? '' : percentDecode(s.query.slice(eq + 1, end), true);
  const values = s.map.get(name);
  if (values === undefined) s.map.set(name, [value]);
  else values.push(value);
}

/** Every parameter, decoded: name → values in the order sent. */
export function parseQuery(query: string): Map<string, string[]> {
  const state: Parsed = { query, map: new Map() };
  forEachParam(state, addParam);
  return state.map;
}

interface Rewrite {
  readonly query: string;
  readonly name: string;
  readonly mask: string;
  /** removeQueryParam: the parameters kept; redactQueryParam: the output up to `last`. */
  out: string;
  /** removeQueryParam: 1 once one was removed; redactQueryParam: where the input not yet copied starts. */
  last: number;
}

function keepOther(s: Rewrite, from: number, eq: number, end: number): void {
  if (nameIs(s.query, from, eq === -1 ? end : eq, s.name)) s.last = 1;
  else s.out += (s.out === '' ? '' : '&') + s.query.slice(from, end);
}

function maskValue(s: Rewrite, from: number, eq: number, end: number): void {
  if (eq === -1 || eq + 1 === end || !nameIs(s.query, from, eq, s.name)) return;
  s.out += s.query.slice(s.last, eq + 1) + s.mask;
  s.last = end;
}

/**
 * The query without any parameter called `name`, in the same form (a leading `?` when the input had one and
 * something is left; '' when nothing is), other parameters as sent (empty ones dropped). The query itself when
 * it has no such parameter.
 */
export function removeQueryParam(query: string, name: string): string {
  const state: Rewrite = { query, name, mask: '', out: '', last: 0 };
  forEachParam(state, keepOther);
  if (state.last === 0) return query;
  if (state.out === '') return '';
  return startOf(query) === 1 ? `?${state.out}` : state.out;
}

/** The query with the value of every parameter called `name` replaced by `mask` (empty values stay empty). */
export function redactQueryParam(query: string, name: string, mask: string): string {
  const state: Rewrite = { query, name, mask, out: '', last: 0 };
  forEachParam(state, maskValue);
  return state.last === 0 ? query : state.out + query.slice(state.last);
}
