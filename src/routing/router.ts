// The router: picks the route for a request from its host, path, method, headers and query.
// Everything is compiled in the constructor; `find` does no RegExp compilation and creates no closures.
//
// Precedence
// 1. Host. The host (port and trailing dot removed) is looked up in the table of exact hosts
//    (`api.example.com`), then in the wildcard tables from the most specific suffix to the least
//    (`*.a.example.com`, then `*.example.com`; `*.example.com` matches one or more labels before
//    `.example.com`, never `example.com` itself), then among the routes without a host. The lookup
//    walks the labels of the request's host, so its cost does not depend on the number of routes.
//    A table in which no route matches (path and predicates) falls through to the next one.
//    Ports in configured hosts are ignored, as they are in the request's host.
// 2. Path, within one host table:
//    a. `{ exact }` paths, then
//    b. prefix paths (a string path or `{ prefix }`; no path is the prefix `/`), then
//    c. `{ regex }` paths in config order (tested against the raw path; named groups become params).
//    Within a and b the most specific pattern comes first, as find-my-way orders them: at the first
//    segment where two patterns differ a static segment beats a `:param`, and a longer prefix beats a
//    shorter one (static > param > wildcard). Equally specific patterns are tried in config order.
// 3. Predicates. A route whose path matches but whose headers or query do not, is passed over for the
//    next candidate in the order above. A route whose path, headers and query match but whose methods do
//    not claims the path: only routes with the same path pattern are still tried (a GET-only and a
//    POST-only `/orders`), and if none takes the method the answer is 405 with Allow, never a less
//    specific route (`POST /orders` must not fall to an open `/` route past the ACLs of `/orders`).
//    HEAD is accepted by a route that allows GET.
//
// Paths are compared case-sensitively (RFC 3986 §6.2.2.1, as NGINX, Envoy and HAProxy do) unless
// `limits.caseSensitivePaths` is false (Envoy's case_sensitive: false), for backends that read `/ADMIN` as `/admin`.
// Paths: a prefix matches on a segment boundary (`/users` matches `/users`, `/users/`, `/users/7`,
// not `/usersX`); a prefix written with a trailing slash (`/users/`) needs something after it (`/users/`
// and below, not `/users`); `/` matches everything. `:name` is a whole segment, matches one non-empty
// segment, and is decoded. Static segments are compared after find-my-way's percent-decoding.
import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../config/schema.ts';
import { PathTable, type CompiledRoute, type MethodNotAllowed, type RouteMatch } from './path-table.ts';
import { lowerCasePattern, parsePathPattern, type PathPattern } from './paths.ts';
import { compilePredicates } from './predicates.ts';
import type { VersioningConfig } from '../config/versioning-schema.ts';
import {
  compileVersionPolicy,
  versionFromAccept,
  versionFromHeader,
  versionFromPath,
  type VersionPolicy,
} from './versions.ts';

export type { MethodNotAllowed, RouteMatch } from './path-table.ts';

/** Routes take this path in other API versions only: 404 naming them (sorted, each once). */
export interface VersionNotFound {
  readonly value: undefined;
  readonly versions: readonly string[];
  /** The version the request asked for, if any. */
  readonly version: string | undefined;
}

export interface RouteDefinition<T> {
  readonly match: MatchConfig;
  readonly value: T;
}

/** Removes a `:port` (also after an IPv6 literal `[…]`) and a trailing dot. */
export function hostName(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  return end === host.length ? host : host.slice(0, end);
}

export interface RouterOptions {
  /** False: paths match whatever their letter case (`limits.caseSensitivePaths`); parameters keep theirs. */
  readonly caseSensitive?: boolean;
  /** `versioning:`: where a request's version comes from (routes' `match.version` are compared with it). */
  readonly versioning?: VersioningConfig;
}

function compileRoute<T>(match: MatchConfig, value: T, index: number, caseSensitive: boolean): CompiledRoute<T> {
  const path = match.path ?? '/';
  const predicates = compilePredicates(match);
  const pattern = (p: PathPattern): PathPattern => (caseSensitive ? p : lowerCasePattern(p));
  if (typeof path === 'string')
    return { value, index, predicates, pattern: pattern(parsePathPattern('prefix', path)), regex: null };
  if ('exact' in path)
    return { value, index, predicates, pattern: pattern(parsePathPattern('exact', path.exact)), regex: null };
  if ('prefix' in path)
    return { value, index, predicates, pattern: pattern(parsePathPattern('prefix', path.prefix)), regex: null };
  return { value, index, predicates, pattern: null, regex: new RegExp(path.regex, caseSensitive ? '' : 'i') };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function tables<T>(groups: Map<string, CompiledRoute<T>[]>, caseSensitive: boolean): Map<string, PathTable<T>> {
  const out = new Map<string, PathTable<T>>();
  for (const [host, routes] of groups) out.set(host, new PathTable(routes, caseSensitive));
  return out;
}

export class Router<T> {
  readonly #exact: Map<string, PathTable<T>>;
  /** Keyed by the suffix after `*.`. */
  readonly #wildcard: Map<string, PathTable<T>>;
  /** The longest wildcard suffix: longer suffixes of the request's host are not looked up. */
  readonly #longestSuffix: number;
  readonly #any: PathTable<T> | undefined;
  readonly #versions: VersionPolicy | null;

  constructor(routes: readonly RouteDefinition<T>[], options: RouterOptions = {}) {
    const caseSensitive = options.caseSensitive ?? true;
    const exact = new Map<string, CompiledRoute<T>[]>();
    const wildcard = new Map<string, CompiledRoute<T>[]>();
    const any: CompiledRoute<T>[] = [];
    routes.forEach((def, index) => {
      const route = compileRoute(def.match, def.value, index, caseSensitive);
      const host = def.match.host;
      if (host === undefined) {
        any.push(route);
        return;
      }
      const names = new Set((typeof host === 'string' ? [host] : host).map((h) => hostName(h.toLowerCase())));
      for (const name of names) {
        if (name.startsWith('*.')) push(wildcard, name.slice(2), route);
        else push(exact, name, route);
      }
    });
    this.#exact = tables(exact, caseSensitive);
    this.#wildcard = tables(wildcard, caseSensitive);
    this.#longestSuffix = [...wildcard.keys()].reduce((max, suffix) => Math.max(max, suffix.length), 0);
    this.#any = any.length === 0 ? undefined : new PathTable(any, caseSensitive);
    this.#versions = options.versioning === undefined ? null : compileVersionPolicy(options.versioning);
  }

  /**
   * The route for a request, or undefined.
   * @param host the Host header (a port is ignored; may be empty)
   * @param path the path without the query string, starting with `/`
   * @param query the raw query string, with or without its leading `?` ('' if none): src/http/query.ts
   */
  find(
    method: string,
    host: string,
    path: string,
    headers: IncomingHttpHeaders,
    query: string,
  ): RouteMatch<T> | MethodNotAllowed | VersionNotFound | undefined {
    const policy = this.#versions;
    if (policy === null) return this.#find(method, host, path, headers, query, undefined, false, null);
    // The sources in order; a path prefix counts only if a versioned route takes the rest of the path.
    let version: string | undefined;
    let prefixed: { version: string; rest: string } | undefined;
    for (const source of policy.from) {
      if (source === 'header') version = versionFromHeader(headers, policy.header);
      else if (source === 'mediaType') {
        const accept = headers.accept;
        version = versionFromAccept(accept, policy.mediaPrefix, policy.mediaSuffix);
      } else {
        const p = versionFromPath(path);
        if (p === undefined) continue;
        const found = this.#find(method, host, p.rest, headers, query, p.version, true, null);
        if (found !== undefined && 'params' in found)
          return { value: found.value, params: found.params, version: p.version, path: p.rest };
        if (found !== undefined) return found; // 405: the versioned path claims the method
        prefixed = p;
      }
      if (version !== undefined) break;
    }
    version ??= policy.fallback;
    const found = this.#find(method, host, path, headers, query, version, false, null);
    if (found !== undefined) return 'params' in found ? { value: found.value, params: found.params, version } : found;
    // A miss: name the versions in which routes take this path (the rarer path pays for the second look).
    const versions: string[] = [];
    if (prefixed !== undefined)
      this.#find(method, host, prefixed.rest, headers, query, prefixed.version, true, versions);
    this.#find(method, host, path, headers, query, version, false, versions);
    if (versions.length === 0) return undefined;
    return { value: undefined, versions: [...new Set(versions)].sort(), version: prefixed?.version ?? version };
  }

  #find(
    method: string,
    host: string,
    path: string,
    headers: IncomingHttpHeaders,
    query: string,
    version: string | undefined,
    versionedOnly: boolean,
    collect: string[] | null,
  ): RouteMatch<T> | MethodNotAllowed | undefined {
    // Host names are case-insensitive (RFC 9110 §4.2.3); configured ones are lowercased at load.
    const name = hostName(host).toLowerCase();
    if (name !== '') {
      if (this.#exact.size !== 0) {
        const table = this.#exact.get(name);
        if (table !== undefined) {
          const found = table.find(method, path, headers, query, version, versionedOnly, collect);
          if (found !== undefined) return found;
        }
      }
      if (this.#wildcard.size !== 0) {
        // Each suffix after a dot, longest first: a.b.example.com → b.example.com, example.com, com.
        for (let dot = name.indexOf('.'); dot > 0; dot = name.indexOf('.', dot + 1)) {
          if (name.length - dot - 1 > this.#longestSuffix) continue;
          const table = this.#wildcard.get(name.slice(dot + 1));
          if (table !== undefined) {
            const found = table.find(method, path, headers, query, version, versionedOnly, collect);
            if (found !== undefined) return found;
          }
        }
      }
    }
    return this.#any?.find(method, path, headers, query, version, versionedOnly, collect);
  }
}
