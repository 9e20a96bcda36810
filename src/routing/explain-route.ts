// Why a route does not match a request (`turnpike explain`): each predicate of its `match:` checked on its own, so
// every reason is listed, not only the first. The router decides which route wins; this only says why others lost.
// Compiles per call: explaining is not on a request's path.
import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../config/schema.ts';
import { queryValue } from '../http/query.ts';
import { parsePathPattern, patternRegExp } from './paths.ts';
import { compilePredicates, type Matcher } from './predicates.ts';
import { hostName } from './router.ts';

export interface RouteMiss {
  readonly on: 'host' | 'path' | 'method' | 'header' | 'query' | 'version';
  readonly detail: string;
}

export interface ExplainedRequest {
  readonly method: string;
  readonly host: string;
  /** Normalised, without the query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** With its leading `?`, or ''. */
  readonly query: string;
  /** The API version the router read (`versioning:`), if any. */
  readonly version?: string;
}

function hostMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name;
  const suffix = pattern.slice(1); // `.example.com`: one or more labels must come before it
  return name.length > suffix.length && name.endsWith(suffix);
}

function describePath(path: NonNullable<MatchConfig['path']>): string {
  if (typeof path === 'string') return `under ${path}`;
  if ('exact' in path) return `exactly ${path.exact}`;
  if ('prefix' in path) return `under ${path.prefix}`;
  return `matching /${path.regex}/`;
}

function pathMatches(path: MatchConfig['path'], requestPath: string, caseSensitive: boolean): boolean {
  const p = path ?? '/';
  if (typeof p === 'object' && 'regex' in p) return new RegExp(p.regex, caseSensitive ? '' : 'i').test(requestPath);
  const pattern =
    typeof p === 'string'
      ? parsePathPattern('prefix', p)
      : parsePathPattern('exact' in p ? 'exact' : 'prefix', 'exact' in p ? p.exact : p.prefix);
  return patternRegExp(pattern, caseSensitive).test(requestPath);
}

function describeMatcher(m: Matcher): string {
  return typeof m === 'string' ? `"${m}"` : String(m);
}

function valueMiss(
  on: 'header' | 'query',
  name: string,
  value: string | string[] | undefined,
  m: Matcher,
): RouteMiss | null {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  if (values.some((v) => (typeof m === 'string' ? v === m : m.test(v)))) return null;
  const want = describeMatcher(m);
  return {
    on,
    detail:
      values.length === 0
        ? `${on} ${name} is absent (wants ${want})`
        : `${on} ${name} is "${values.join(', ')}", not ${typeof m === 'string' ? want : `matching ${want}`}`,
  };
}

/** Every predicate of `match` that `req` fails; empty when the route matches it. */
export function whyNot(match: MatchConfig, req: ExplainedRequest, caseSensitive: boolean): RouteMiss[] {
  const misses: RouteMiss[] = [];
  if (match.host !== undefined) {
    const name = hostName(req.host).toLowerCase();
    const hosts = (typeof match.host === 'string' ? [match.host] : match.host).map((h) => hostName(h.toLowerCase()));
    if (!hosts.some((h) => hostMatches(h, name)))
      misses.push({ on: 'host', detail: `host ${name || '(none)'} is not ${hosts.join(' or ')}` });
  }
  if (!pathMatches(match.path, req.path, caseSensitive))
    misses.push({ on: 'path', detail: `path ${req.path} is not ${describePath(match.path ?? '/')}` });
  const p = compilePredicates(match);
  if (p.methods !== null && !p.methods.has(req.method))
    misses.push({ on: 'method', detail: `method ${req.method} is not ${[...p.methods].join(', ')}` });
  p.headerNames.forEach((name, i) => {
    const miss = valueMiss('header', name, req.headers[name], p.headerMatchers[i]!);
    if (miss !== null) misses.push(miss);
  });
  p.queryNames.forEach((name, i) => {
    const miss = valueMiss('query', name, queryValue(req.query, name), p.queryMatchers[i]!);
    if (miss !== null) misses.push(miss);
  });
  if (p.version !== null && p.version !== req.version)
    misses.push({ on: 'version', detail: `version ${req.version ?? '(none)'} is not ${p.version}` });
  return misses;
}
