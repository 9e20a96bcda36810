// The small JSONPath subset body transforms use: `$.a.b`, `$.a[*].b`, `$.a[0]` (and `$['a b']` for names that
// are not identifiers). Paths are parsed once at load; the operations walk a parsed JSON document in place.

/** A name, an array index, or every element (`[*]`: an object there counts as a list of one, as XML's lone element). */
export type Segment = { readonly name: string } | { readonly index: number } | { readonly all: true };
export type JsonPath = readonly Segment[];

type Container = Record<string, unknown> | unknown[];

const SEGMENT = /^(?:\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[\*\]|\['((?:[^'\\]|\\.)*)'\])/;

/** Parses a path; throws with what is wrong (the config loader shows it at the key's line). */
export function parsePath(text: string): JsonPath {
  if (!text.startsWith('$')) throw new Error(`"${text}" must start with $`);
  const segments: Segment[] = [];
  let rest = text.slice(1);
  while (rest !== '') {
    const m = SEGMENT.exec(rest);
    if (m === null) throw new Error(`"${text}": expected .name, [n], [*] or ['name'] at "${rest}"`);
    if (m[1] !== undefined) segments.push({ name: m[1] });
    else if (m[2] !== undefined) segments.push({ index: Number(m[2]) });
    else if (m[3] !== undefined) segments.push({ name: m[3].replace(/\\(.)/g, '$1') });
    else segments.push({ all: true });
    const last = segments[segments.length - 1]!;
    // Assigning to __proto__ would change an object's prototype instead of setting a member.
    if ('name' in last && last.name === '__proto__') throw new Error(`"${text}": __proto__ cannot be named`);
    rest = rest.slice(m[0].length);
  }
  if (segments.length === 0) throw new Error(`"${text}" names the whole document: name a member`);
  return segments;
}

export function isDefinite(path: JsonPath): boolean {
  return path.every((s) => !('all' in s));
}

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** Each value one step down from `value`. */
function step(value: unknown, segment: Segment, out: unknown[]): void {
  if (!isContainer(value)) return;
  if ('all' in segment) {
    if (Array.isArray(value)) out.push(...value);
    else out.push(value);
  } else if ('index' in segment) {
    if (Array.isArray(value) && segment.index < value.length) out.push(value[segment.index]);
  } else if (!Array.isArray(value) && Object.hasOwn(value, segment.name)) out.push(value[segment.name]);
}

/** Every container the path's last segment applies to. */
function parents(doc: unknown, path: JsonPath): Container[] {
  let current: unknown[] = [doc];
  for (let i = 0; i < path.length - 1; i++) {
    const next: unknown[] = [];
    for (const v of current) step(v, path[i]!, next);
    current = next;
  }
  return current.filter(isContainer);
}

/** Removes what the path names, wherever it matches. */
export function removeAt(doc: unknown, path: JsonPath): void {
  const last = path[path.length - 1]!;
  for (const parent of parents(doc, path)) {
    if ('all' in last) {
      if (Array.isArray(parent)) parent.length = 0;
      else for (const key of Object.keys(parent)) delete parent[key];
    } else if ('index' in last) {
      if (Array.isArray(parent) && last.index < parent.length) parent.splice(last.index, 1);
    } else if (!Array.isArray(parent)) delete parent[last.name];
  }
}

/** Renames the member the path names to `to`, in every parent it matches (a member of that name is replaced). */
export function renameAt(doc: unknown, path: JsonPath, to: string): void {
  const last = path[path.length - 1] as { name: string };
  for (const parent of parents(doc, path)) {
    if (Array.isArray(parent) || !Object.hasOwn(parent, last.name)) continue;
    const value = parent[last.name];
    delete parent[last.name];
    parent[to] = value;
  }
}

/** Sets the value wherever the path matches; missing objects along a definite path are created. */
export function setAt(doc: unknown, path: JsonPath, value: unknown): void {
  const last = path[path.length - 1]!;
  let targets: Container[];
  if (isDefinite(path)) {
    let current: unknown = doc;
    for (let i = 0; i < path.length - 1 && isContainer(current); i++) {
      const s = path[i] as { name: string } | { index: number };
      const key = 'name' in s ? s.name : s.index;
      if ('name' in s && Array.isArray(current)) return;
      let next = (current as Record<string | number, unknown>)[key];
      if (!isContainer(next)) {
        if ('index' in s) return; // an index past the end is not made up
        next = (current as Record<string, unknown>)[s.name] = {};
      }
      current = next;
    }
    targets = isContainer(current) ? [current] : [];
  } else targets = parents(doc, path);
  for (const parent of targets) {
    // structuredClone: each match gets its own copy, so a later edit of one does not change the others.
    if ('all' in last) {
      if (Array.isArray(parent)) parent.fill(null).forEach((_, i) => (parent[i] = structuredClone(value)));
    } else if ('index' in last) {
      if (Array.isArray(parent) && last.index <= parent.length) parent[last.index] = structuredClone(value);
    } else if (!Array.isArray(parent)) parent[last.name] = structuredClone(value);
  }
}

/** The value at a definite path, or undefined. */
export function getAt(doc: unknown, path: JsonPath): unknown {
  const out: unknown[] = [];
  let current: unknown[] = [doc];
  for (const s of path) {
    out.length = 0;
    for (const v of current) step(v, s, out);
    current = [...out];
  }
  return current[0];
}
