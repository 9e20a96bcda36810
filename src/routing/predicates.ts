// Route predicates besides the path: methods, headers and query parameters. Compiled once; tested on
// the hot path without allocating (apart from the value of a query parameter a predicate names).
import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../config/schema.ts';
import { queryValue } from '../http/query.ts';

/** An exact string or a RegExp (compiled in the constructor, never on the hot path). */
export type Matcher = string | RegExp;

export interface Predicates {
  /** Allowed methods (HEAD added when GET is allowed), or null for any method. */
  readonly methods: ReadonlySet<string> | null;
  readonly headerNames: readonly string[];
  readonly headerMatchers: readonly Matcher[];
  readonly queryNames: readonly string[];
  readonly queryMatchers: readonly Matcher[];
  /** `match.version`: the only API version this route takes (versions.ts), or null for any. */
  readonly version: string | null;
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
    version: match.version ?? null,
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

/** True when the first parameter called `name` in the raw query has a value the matcher accepts (src/http/query.ts). */
function queryMatches(query: string, name: string, m: Matcher): boolean {
  const value = queryValue(query, name);
  return value !== undefined && matches(value, m);
}

/** Methods, then every header, then every query predicate. */
export function predicatesPass(p: Predicates, method: string, headers: IncomingHttpHeaders, query: string): boolean {
  if (p.methods !== null && !p.methods.has(method)) return false;
  return headersAndQueryPass(p, headers, query);
}

/** Every header and query predicate (a route whose methods alone refuse a request claims its path: 405). */
export function headersAndQueryPass(p: Predicates, headers: IncomingHttpHeaders, query: string): boolean {
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
