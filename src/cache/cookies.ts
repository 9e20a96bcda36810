// Which Cookie headers the cache may serve and store. As Varnish's built-in policy passes every request with a
// Cookie (the answer may be a logged-in user's, and a logged-in user must not get the anonymous copy), a request
// is looked up only when each of its cookies is in the key (`cookie:NAME`) or named by `ignoreCookies`. Names
// are compared exactly: one the upstream might read otherwise (other case or spacing, a keyed name sent twice,
// a pair without a name) is not covered, so it bypasses.
import { forEachCookie } from '../http/cookies.ts';

export interface CookieRules {
  /** Cookie names in the key, in key order. */
  readonly keyed: readonly string[];
  /** Whether a cookie was declared not to change the answer. */
  readonly ignored: (name: string) => boolean;
}

/** `ignore` holds names and globs (`*`: any characters), compiled once here. */
export function compileCookieRules(keyed: readonly string[], ignore: readonly string[]): CookieRules {
  const names = new Set(ignore.filter((n) => !n.includes('*')));
  const globs = ignore.filter((n) => n.includes('*'));
  let ignored: (name: string) => boolean;
  if (globs.includes('*')) ignored = () => true;
  else if (globs.length === 0) ignored = (name) => names.has(name);
  else {
    const re = new RegExp(`^(?:${globs.map((g) => g.split('*').map(escape).join('.*')).join('|')})$`, 's');
    ignored = (name) => names.has(name) || re.test(name);
  }
  return { keyed, ignored };
}

const escape = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

/**
 * The keyed cookies' values (undefined: absent) in `rules.keyed` order, or null when the request must bypass
 * the cache (a cookie neither keyed nor ignored, a keyed one sent twice, a pair without `=` or without a name).
 * The pairs are src/http/cookies.ts's; what bypasses is this policy's, stricter than any lookup.
 */
export function keyedCookies(header: string, rules: CookieRules): (string | undefined)[] | null {
  const state: Admission = { rules, values: new Array(rules.keyed.length) };
  return forEachCookie(header, state, admit) ? state.values : null;
}

interface Admission {
  readonly rules: CookieRules;
  readonly values: (string | undefined)[];
}

function admit(s: Admission, name: string, value: string | undefined): boolean {
  if (value === undefined || name === '') return false;
  const i = s.rules.keyed.indexOf(name);
  if (i === -1) return s.rules.ignored(name);
  if (s.values[i] !== undefined) return false;
  s.values[i] = value;
  return true;
}
