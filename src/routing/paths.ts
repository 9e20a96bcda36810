// Path patterns: parsing config paths into segments, the find-my-way pattern of each, the RegExp used
// for runtime checks, and the specificity order shared with find-my-way (static > param > wildcard).
import { TurnpikeError } from '../errors.ts';
import { percentDecodePath } from '../http/percent.ts';

/** One path segment of a pattern: its literal text, or `null` for a `:param` segment. */
export type Segment = string | null;

/**
 * A compiled string path.
 * - `exact`: the request path has exactly these segments.
 * - `prefix`: the request path starts with these segments on a segment boundary; with `needsMore`
 *   (a prefix written with a trailing slash, e.g. `/users/` or `/`) at least one more segment must follow.
 * Segments are what `path.slice(1).split('/')` gives: `/` is `['']`, `/a/` is `['a', '']`.
 */
export interface PathPattern {
  readonly kind: 'exact' | 'prefix';
  readonly source: string;
  readonly segments: readonly Segment[];
  /** Names of the `:param` segments, in order. */
  readonly paramNames: readonly string[];
  readonly needsMore: boolean;
}

const PARAM_NAME = /^[A-Za-z0-9_]+$/;

function invalid(source: string, why: string): TurnpikeError {
  return new TurnpikeError('TP_CONFIG_INVALID', `path "${source}": ${why}`);
}

function parseSegments(source: string, body: string, paramNames: string[]): Segment[] {
  const segments: Segment[] = [];
  for (const text of body.split('/')) {
    if (text.charCodeAt(0) === 58 /* : */) {
      const name = text.slice(1);
      if (!PARAM_NAME.test(name)) {
        throw invalid(
          source,
          `"${text}" is not a parameter; a parameter is a whole segment such as :id (letters, digits, _)`,
        );
      }
      paramNames.push(name);
      segments.push(null);
    } else {
      if (/[*?#]/.test(text))
        throw invalid(source, 'a path segment cannot contain *, ? or # (use { regex } for patterns)');
      segments.push(percentDecodePath(text));
    }
  }
  return segments;
}

export function parsePathPattern(kind: 'exact' | 'prefix', source: string): PathPattern {
  if (source.charCodeAt(0) !== 47) throw invalid(source, 'a path must start with /');
  const paramNames: string[] = [];
  if (kind === 'exact') {
    return { kind, source, segments: parseSegments(source, source.slice(1), paramNames), paramNames, needsMore: false };
  }
  if (source === '/') return { kind, source, segments: [], paramNames, needsMore: true };
  const needsMore = source.endsWith('/');
  const body = needsMore ? source.slice(1, -1) : source.slice(1);
  return { kind, source, segments: parseSegments(source, body, paramNames), paramNames, needsMore };
}

/**
 * The find-my-way pattern for a run of segments, optionally followed by `/*` (at least one more
 * segment). Parameters get positional names (`_0`, `_1`, …) so routes that name them differently share
 * one registration; the names are also this key's identity.
 */
export function fmwPattern(segments: readonly Segment[], wild: boolean): string {
  let out = '';
  let param = 0;
  for (const s of segments) out += s === null ? `/:_${param++}` : '/' + s.replaceAll(':', '::');
  return wild ? out + '/*' : out;
}

const ESCAPE = /[.*+?^${}()|[\]\\]/g;

/**
 * A RegExp equivalent to the pattern, tested against the raw request path. Group i captures the i-th
 * parameter. Used only for the rare candidates that might or might not match (see path-table.ts).
 */
export function patternRegExp(p: PathPattern, caseSensitive = true): RegExp {
  let body = '^';
  for (const s of p.segments) body += s === null ? '/([^/]+)' : '/' + s.replace(ESCAPE, '\\$&');
  if (p.kind === 'exact') body += '$';
  else if (p.needsMore) body += '/';
  else body += '(?:/|$)';
  return new RegExp(body, caseSensitive ? '' : 'i');
}

/**
 * Orders two patterns that match the same path the way find-my-way does: at the first position where
 * they differ, a static segment beats a parameter, and a segment beats the end of a shorter prefix
 * (the wildcard). Negative when `a` is more specific.
 */
/** The pattern with its static segments in lower case (parameter names keep theirs): `limits.caseSensitivePaths: false`. */
export function lowerCasePattern(p: PathPattern): PathPattern {
  return { ...p, segments: p.segments.map((s) => (s === null ? null : s.toLowerCase())) };
}

export function compareSpecificity(a: readonly Segment[], b: readonly Segment[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (i >= a.length) return 1;
    if (i >= b.length) return -1;
    const aParam = a[i] === null;
    if (aParam !== (b[i] === null)) return aParam ? 1 : -1;
  }
  return 0;
}
