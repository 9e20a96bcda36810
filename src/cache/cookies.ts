// Which Cookie headers the cache may serve and store. As Varnish's built-in policy passes every request with a
// Cookie (the answer may be a logged-in user's, and a logged-in user must not get the anonymous copy), a request
// is looked up only when each of its cookies is in the key (`cookie:NAME`) or named by `ignoreCookies`. Names
// are compared exactly: one the upstream might read otherwise (other case or spacing, a keyed name sent twice,
// a pair without a name) is not covered, so it bypasses.

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
 * the cache (a cookie neither keyed nor ignored, a keyed one sent twice, a pair without `=`).
 */
export function keyedCookies(header: string, rules: CookieRules): (string | undefined)[] | null {
  const keyed = rules.keyed;
  const values: (string | undefined)[] = new Array(keyed.length);
  let start = 0;
  while (start <= header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const pair = trimOws(header.slice(start, end));
    start = end + 1;
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) return null;
    const name = pair.slice(0, eq);
    const i = keyed.indexOf(name);
    if (i !== -1) {
      if (values[i] !== undefined) return null;
      values[i] = pair.slice(eq + 1);
    } else if (!rules.ignored(name)) {
      return null;
    }
  }
  return values;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}
