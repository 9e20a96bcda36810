// Route predicates besides the path: methods, headers and query parameters. Compiled once; tested on
// the hot path without allocating (apart from decoding a query value that is percent-encoded).
import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../config/schema.ts';

/** An exact string or a RegExp (compiled in the constructor, never on the hot path). */
export type Matcher = string | RegExp;

export interface Predicates {
  /** Allowed methods (HEAD added when GET is allowed), or null for any method. */
  readonly methods: ReadonlySet<string> | null;
  readonly headerNames: readonly string[];
  readonly headerMatchers: readonly Matcher[];
  readonly queryNames: readonly string[];
  readonly queryMatchers: readonly Matcher[];
}

type MatcherConfig = string | { readonly regex: string };

function compileMatcher(m: MatcherConfig): Matcher {
  return typeof m === 'string' ? m : new RegExp(m.regex);
}

export function compilePredicates(match: MatchConfig): Predicates {
  let methods: Set<string> | null = null;
  if (match.methods !== undefined) {
    methods = new Set(match.methods.map((m) => m.toUpperCase()));
    if (methods.has('GET')) methods.add('HEAD');
  }
  const headers = Object.entries(match.headers ?? {});
  const query = Object.entries(match.query ?? {});
  return {
    methods,
    headerNames: headers.map(([name]) => name.toLowerCase()),
    headerMatchers: headers.map(([, m]) => compileMatcher(m)),
    queryNames: query.map(([name]) => name),
    queryMatchers: query.map(([, m]) => compileMatcher(m)),
  };
}

function matches(value: string, m: Matcher): boolean {
  return typeof m === 'string' ? value === m : m.test(value);
}

function headerMatches(value: string | string[] | undefined, m: Matcher): boolean {
  if (value === undefined) return false;
  if (typeof value === 'string') return matches(value, m);
  for (let i = 0; i < value.length; i++) if (matches(value[i]!, m)) return true;
  return false;
}

/** Decodes a query component (`+` is a space); malformed escapes are left as they are. */
export function decodeQueryComponent(s: string): string {
  if (s.indexOf('+') !== -1) s = s.replaceAll('+', ' ');
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function hasEscape(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ || c === 43 /* + */) return true;
  }
  return false;
}

/** True when some `name=value` pair of the raw query string has a value the matcher accepts. */
export function queryMatches(query: string, name: string, m: Matcher): boolean {
  const len = query.length;
  let start = 0;
  while (start < len) {
    let end = query.indexOf('&', start);
    if (end === -1) end = len;
    let keyEnd = query.indexOf('=', start);
    if (keyEnd === -1 || keyEnd > end) keyEnd = end;
    const keyLen = keyEnd - start;
    let found: boolean;
    if (hasEscape(query, start, keyEnd)) found = decodeQueryComponent(query.slice(start, keyEnd)) === name;
    else found = keyLen === name.length && query.startsWith(name, start);
    if (found) {
      const value = keyEnd >= end ? '' : decodeQueryComponent(query.slice(keyEnd + 1, end));
      if (matches(value, m)) return true;
    }
    start = end + 1;
  }
  return false;
}

/** Methods, then every header, then every query predicate. */
export function predicatesPass(p: Predicates, method: string, headers: IncomingHttpHeaders, query: string): boolean {
  if (p.methods !== null && !p.methods.has(method)) return false;
  const headerNames = p.headerNames;
  for (let i = 0; i < headerNames.length; i++) {
    if (!headerMatches(headers[headerNames[i]!], p.headerMatchers[i]!)) return false;
  }
  const queryNames = p.queryNames;
  for (let i = 0; i < queryNames.length; i++) {
    if (!queryMatches(query, queryNames[i]!, p.queryMatchers[i]!)) return false;
  }
  return true;
}
