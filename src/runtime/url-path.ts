// Splits a request target into path and query, and removes dot segments so `/public/../admin` cannot
// sneak past a path rule (RFC 3986 §5.2.4). Returns null for a target that is not a path.

export interface RequestTarget {
  readonly path: string;
  readonly query: string;
  /** The host[:port] of an absolute-form target, which replaces the Host header (RFC 9112 §3.2.2). */
  readonly authority?: string;
}

export function parseRequestTarget(url: string): RequestTarget | null {
  if (url.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (sent to proxies): path, query, and the authority that stands for Host.
    // A non-empty authority right after `//`, and no `\`: the URL parser would read `http:///x` as host `x`.
    if (!/^https?:\/\/[^/?#\\]/i.test(url) || url.includes('\\') || !URL.canParse(url)) return null;
    const u = new URL(url);
    // userinfo in a request target is deprecated and only ever confuses who the request is for.
    if (u.username !== '' || u.password !== '' || u.host === '') return null;
    const inner = parseRequestTarget(u.pathname + u.search);
    return inner === null ? null : { path: inner.path, query: inner.query, authority: u.host };
  }
  const q = url.indexOf('?');
  let path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (path.includes('/.') || path.includes('%2e') || path.includes('%2E')) path = removeDotSegments(path);
  return { path, query };
}

export function removeDotSegments(path: string): string {
  const input = path.replace(/%2e/gi, '.').split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    if (seg === '.') {
      if (i === input.length - 1) out.push('');
      continue;
    }
    if (seg === '..') {
      out.pop();
      if (i === input.length - 1) out.push('');
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}
