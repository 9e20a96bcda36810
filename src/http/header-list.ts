// Adding to response header fields that hold lists (RFC 9110 5.6.1: `Vary`, `RateLimit-Policy`) and to fields
// that are sent once per value (`Set-Cookie`, RFC 6265 3: never folded into one line). A header value here is as
// Node's header objects hold it: a string, a number, or an array of field lines. An array is never changed in
// place (a cached response's headers may share it): appending makes a new one.

/** Response header fields by lowercase name. */
export type HeaderFields = Record<string, string | string[] | number | undefined>;

/** Whether a list-valued field lists `token` (case-insensitive, OWS around members ignored) or `*`. */
export function listHasToken(value: string | string[] | number | undefined, token: string): boolean {
  if (value === undefined) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (listHasToken(value[i], token)) return true;
    return false;
  }
  const text = typeof value === 'string' ? value : String(value);
  const n = token.length;
  let from = 0;
  while (from <= text.length) {
    let end = text.indexOf(',', from);
    if (end === -1) end = text.length;
    let a = from;
    let b = end;
    while (a < b && isOws(text.charCodeAt(a))) a++;
    while (b > a && isOws(text.charCodeAt(b - 1))) b--;
    if (b - a === 1 && text.charCodeAt(a) === 42 /* * */) return true;
    if (b - a === n && (text.startsWith(token, a) || text.slice(a, b).toLowerCase() === token.toLowerCase()))
      return true;
    from = end + 1;
  }
  return false;
}

/**
 * Adds `token` to a list-valued field unless it is there already (in any case) or the field is `*` (`Vary: *`
 * varies on everything). An array of field lines becomes one line, members joined with `, `.
 */
export function addListToken(headers: HeaderFields, name: string, token: string): void {
  const prev = headers[name];
  if (prev === undefined || prev === '' || (Array.isArray(prev) && prev.length === 0)) headers[name] = token;
  else if (!listHasToken(prev, token))
    headers[name] = `${Array.isArray(prev) ? prev.join(', ') : String(prev)}, ${token}`;
}

/** Appends a member to a list-valued field, even one already listed (each RateLimit-Policy member is its own). */
export function appendListMember(headers: HeaderFields, name: string, member: string): void {
  const prev = headers[name];
  headers[name] = prev === undefined ? member : `${Array.isArray(prev) ? prev.join(', ') : String(prev)}, ${member}`;
}

/** Adds one more line of a field sent once per value (`add:` of the headers plugin). */
export function appendFieldLine(headers: HeaderFields, name: string, value: string): void {
  const prev = headers[name];
  headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
}

/** Adds a Set-Cookie line: each cookie is its own field line, never joined with commas. */
export function appendSetCookie(headers: HeaderFields, cookie: string): void {
  appendFieldLine(headers, 'set-cookie', cookie);
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}
