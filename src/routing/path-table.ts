// The routes of one host key: a find-my-way radix tree of path patterns plus, for every registered
// pattern ("key"), the precomputed ordered list of routes that can match a path find-my-way files
// under that key. A lookup is one find-my-way search, a short loop over that list, then regex routes.
//
// Which routes belong in a key's list: find-my-way returns the first key, in its order (at the first
// differing segment static > param > wildcard, with backtracking), that matches the path. A route
// whose every key comes before the returned key in that order therefore cannot match (find-my-way
// would have returned its key), so the list holds the routes whose keys are the returned one or come
// after it, and that match some path of the key: most are guaranteed to match (their parameters are
// read off the key's parameters or its static segments); the rest (e.g. route `/users/:id/posts`
// for key `/users/me/*`) are checked at lookup with a precompiled RegExp.
import type { IncomingHttpHeaders } from 'node:http';
import FindMyWay from 'find-my-way';
import { percentDecode } from '../http/percent.ts';
import { compareSpecificity, fmwPattern, patternRegExp, type PathPattern, type Segment } from './paths.ts';
import { headersAndQueryPass, predicatesPass, type Predicates } from './predicates.ts';

export interface CompiledRoute<T> {
  readonly value: T;
  /** Position in the configuration: the tie-breaker. */
  readonly index: number;
  readonly predicates: Predicates;
  /** The string path (exact or prefix), or null for a regex route. */
  readonly pattern: PathPattern | null;
  /** The `{ regex }` path, or null. */
  readonly regex: RegExp | null;
}

export interface RouteMatch<T> {
  readonly value: T;
  readonly params: Record<string, string>;
  /** With versioning: the request's API version (absent when it has none). */
  readonly version?: string;
  /** With versioning: the path without the `/v{version}` prefix the version was read from, to forward. */
  readonly path?: string;
}

/**
 * The most specific path that matches belongs to routes none of which allows the method: answered 405 rather
 * than passed to a less specific (often less protected) route. `allow` is the Allow header.
 */
export interface MethodNotAllowed {
  readonly value: undefined;
  readonly allow: string;
}

interface Candidate<T> {
  readonly route: CompiledRoute<T>;
  readonly paramNames: readonly string[];
  /** Per parameter: the find-my-way parameter holding its value, or null when `paramConst` has it. */
  readonly paramFrom: readonly (string | null)[];
  readonly paramConst: readonly string[];
  /** Runtime check for a route that might match; its groups are the parameters. Null when guaranteed. */
  readonly check: RegExp | null;
}

interface Key<T> {
  readonly segments: readonly Segment[];
  /** Matches paths with more segments than `segments` (registered as `…/*`). */
  readonly wild: boolean;
  candidates: Candidate<T>[];
}

interface TrieNode<T> {
  readonly statics: Map<string, TrieNode<T>>;
  param: TrieNode<T> | null;
  /** Routes whose pattern's segments end at this node. */
  readonly routes: CompiledRoute<T>[];
}

type Fmw = ReturnType<typeof FindMyWay>;

const EMPTY_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const EMPTY_SEARCH = Object.freeze({});
const noop = (): void => {};

function newNode<T>(): TrieNode<T> {
  return { statics: new Map(), param: null, routes: [] };
}

export class PathTable<T> {
  readonly #fmw: Fmw;
  readonly #root: TrieNode<T> = newNode();
  readonly #checks = new Map<PathPattern, RegExp>();
  readonly #regexRoutes: readonly CompiledRoute<T>[];
  /** Used when find-my-way finds nothing (a malformed path, an over-long parameter): the `/` prefixes. */
  readonly #fallback: readonly Candidate<T>[];

  readonly #caseSensitive: boolean;

  /** With `caseSensitive` false the routes' static segments must be in lower case (router.ts does it). */
  constructor(routes: readonly CompiledRoute<T>[], caseSensitive = true) {
    this.#caseSensitive = caseSensitive;
    // find-my-way lower-cases the path it looks up and keeps parameters as sent.
    this.#fmw = FindMyWay({
      caseSensitive,
      ignoreTrailingSlash: false,
      ignoreDuplicateSlashes: false,
      maxParamLength: 2048,
      querystringParser: () => EMPTY_SEARCH,
    });
    const keys = new Map<string, Key<T>>();
    const addKey = (segments: readonly Segment[], wild: boolean): void => {
      const path = fmwPattern(segments, wild);
      if (!keys.has(path)) keys.set(path, { segments, wild, candidates: [] });
    };
    for (const route of routes) {
      const p = route.pattern;
      if (p === null) continue;
      let node = this.#root;
      for (const s of p.segments) {
        if (s === null) node = node.param ??= newNode();
        else {
          let next = node.statics.get(s);
          if (next === undefined) node.statics.set(s, (next = newNode()));
          node = next;
        }
      }
      node.routes.push(route);
      if (p.kind === 'exact' || !p.needsMore) addKey(p.segments, false);
      if (p.kind === 'prefix') addKey(p.segments, true);
    }
    for (const [path, key] of keys) {
      key.candidates = this.#candidatesFor(key);
      this.#fmw.on('GET', path, noop, key);
    }
    this.#regexRoutes = routes.filter((r) => r.regex !== null);
    this.#fallback = keys.get('/*')?.candidates ?? [];
  }

  /** The routes that can match a path filed under `key`, most specific first. */
  #candidatesFor(key: Key<T>): Candidate<T>[] {
    const out: Candidate<T>[] = [];
    const ks = key.segments;
    const kLen = ks.length;
    // `later`: the route's keys already come after this key in find-my-way's order.
    // `might`: the route is not guaranteed to match every path of the key.
    const walk = (node: TrieNode<T>, depth: number, later: boolean, might: boolean): void => {
      for (const route of node.routes) {
        const p = route.pattern!;
        let fits: boolean;
        if (depth < kLen) fits = p.kind === 'prefix';
        else if (depth === kLen) fits = key.wild ? p.kind === 'prefix' : p.kind === 'exact' || !p.needsMore;
        else fits = true; // longer than the key: only reached with `might`
        if (fits) out.push(this.#candidate(route, key, might || depth > kLen));
      }
      if (depth < kLen) {
        const s = ks[depth];
        if (s !== null && s !== undefined) {
          const child = node.statics.get(s);
          if (child !== undefined) walk(child, depth + 1, later, might);
          // A parameter matches any non-empty segment, and comes after a static one.
          if (s !== '' && node.param !== null) walk(node.param, depth + 1, true, might);
        } else {
          if (node.param !== null) walk(node.param, depth + 1, later, might);
          // A static segment against the key's parameter comes first in find-my-way's order: only
          // reachable if the route already comes later, and then only maybe matching.
          if (later) for (const child of node.statics.values()) walk(child, depth + 1, later, true);
        }
      } else if (key.wild && later) {
        // Segments against the key's wildcard: routes longer than the key that come after it anyway.
        if (node.param !== null) walk(node.param, depth + 1, later, true);
        for (const child of node.statics.values()) walk(child, depth + 1, later, true);
      }
    };
    walk(this.#root, 0, false, false);
    return out.sort(byPrecedence);
  }

  #candidate(route: CompiledRoute<T>, key: Key<T>, might: boolean): Candidate<T> {
    const p = route.pattern!;
    if (might) {
      let check = this.#checks.get(p);
      if (check === undefined) this.#checks.set(p, (check = patternRegExp(p, this.#caseSensitive)));
      return { route, paramNames: p.paramNames, paramFrom: [], paramConst: [], check };
    }
    const paramFrom: (string | null)[] = [];
    const paramConst: string[] = [];
    let keyParam = 0;
    for (let i = 0; i < p.segments.length; i++) {
      const k = key.segments[i];
      if (p.segments[i] === null) {
        paramFrom.push(k === null ? `_${keyParam}` : null);
        paramConst.push(k ?? '');
      }
      if (k === null) keyParam++;
    }
    return { route, paramNames: p.paramNames, paramFrom, paramConst, check: null };
  }

  /**
   * `version`: the request's API version; `versionedOnly`: only routes with `match.version` may match (the
   * version came from a path prefix); `collect`: a miss lists here the versions of routes that matched but
   * for their version (a 404 that names the versions that exist).
   */
  find(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    query: string,
    version?: string,
    versionedOnly = false,
    collect: string[] | null = null,
  ): RouteMatch<T> | MethodNotAllowed | undefined {
    const found = this.#fmw.find('GET', path);
    const candidates = found === null ? this.#fallback : (found.store as Key<T>).candidates;
    const fmwParams = found === null ? EMPTY_PARAMS : found.params;
    // The first route whose path, headers and query match but whose methods do not claims the path: only routes
    // with the same path segments (GET /orders and POST /orders as two routes) may still take the request.
    let claimed: readonly Segment[] | null = null;
    let allow: Set<string> | null = null;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const p = c.route.predicates;
      if (claimed !== null && !sameSegments(claimed, c.route.pattern!.segments)) continue;
      if (p.version === null ? versionedOnly : p.version !== version) {
        if (collect !== null && p.version !== null && predicatesPass(p, method, headers, query)) {
          if ((c.check === null ? mappedParams(c, fmwParams) : checkedParams(c, path)) !== undefined)
            collect.push(p.version);
        }
        continue;
      }
      if (!predicatesPass(p, method, headers, query)) {
        if (p.methods === null || p.methods.has(method) || !headersAndQueryPass(p, headers, query)) continue;
        const params = c.check === null ? mappedParams(c, fmwParams) : checkedParams(c, path);
        if (params === undefined) continue;
        claimed ??= c.route.pattern!.segments;
        for (const m of p.methods) (allow ??= new Set()).add(m);
        continue;
      }
      const params = c.check === null ? mappedParams(c, fmwParams) : checkedParams(c, path);
      if (params !== undefined) return { value: c.route.value, params };
    }
    if (allow !== null) return { value: undefined, allow: [...allow].join(', ') };
    const regexRoutes = this.#regexRoutes;
    for (let i = 0; i < regexRoutes.length; i++) {
      const route = regexRoutes[i]!;
      const p = route.predicates;
      if (!predicatesPass(p, method, headers, query)) continue;
      const versionPasses = p.version === null ? !versionedOnly : p.version === version;
      if (!versionPasses && (collect === null || p.version === null)) continue;
      const m = route.regex!.exec(path);
      if (m === null) continue;
      if (versionPasses) return { value: route.value, params: groupParams(m.groups) };
      collect!.push(p.version!);
    }
    return undefined;
  }
}

function sameSegments(a: readonly Segment[], b: readonly Segment[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function byPrecedence<T>(a: Candidate<T>, b: Candidate<T>): number {
  const pa = a.route.pattern!;
  const pb = b.route.pattern!;
  if (pa.kind !== pb.kind) return pa.kind === 'exact' ? -1 : 1;
  return compareSpecificity(pa.segments, pb.segments) || a.route.index - b.route.index;
}

/** Parameters of a guaranteed candidate; undefined when one is empty (a parameter needs a value). */
function mappedParams<T>(
  c: Candidate<T>,
  fmwParams: Record<string, string | undefined>,
): Record<string, string> | undefined {
  const names = c.paramNames;
  if (names.length === 0) return EMPTY_PARAMS;
  const params: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) {
    const from = c.paramFrom[i];
    const value = from === null ? c.paramConst[i] : fmwParams[from!];
    if (value === undefined || value === '') return undefined;
    params[names[i]!] = value;
  }
  return params;
}

function checkedParams<T>(c: Candidate<T>, path: string): Record<string, string> | undefined {
  const m = c.check!.exec(path);
  if (m === null) return undefined;
  const names = c.paramNames;
  if (names.length === 0) return EMPTY_PARAMS;
  const params: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) params[names[i]!] = percentDecode(m[i + 1]!, false);
  return params;
}

function groupParams(groups: Record<string, string | undefined> | undefined): Record<string, string> {
  if (groups === undefined) return EMPTY_PARAMS;
  const params: Record<string, string> = {};
  for (const name in groups) {
    const value = groups[name];
    if (value !== undefined) params[name] = percentDecode(value, false);
  }
  return params;
}
