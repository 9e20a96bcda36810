// Turns zod issues into problems a person can act on: where (file:line:column and key path), what was
// found, and what was expected (the allowed keys of a map, the accepted forms of a value).
import { isMap, isScalar, isSeq, isPair, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';
import type { ErrorCode } from '../errors.ts';
import type { PluginSchemas } from './schema.ts';

export interface ConfigProblem {
  readonly code: ErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly message: string;
}

/**
 * A problem found by a check that runs after the schema (files, secrets, references): where it is, as a key
 * path the loader places at its line and column, what is wrong, and its code (default TP_CONFIG_INVALID).
 */
export interface CheckProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly code?: ErrorCode;
}

export interface CheckEnv {
  /** Folder of the config file (the working directory for inline config): relative paths start here. */
  readonly configDir: string;
  /** false (`validate --no-files`): do not open the files the config names; check everything else. */
  readonly readFiles: boolean;
}

/**
 * Checks of what the schema cannot see (files exist and parse, keys match certificates, a store a plugin needs
 * is configured...). It gets the document as written (after `${VAR}` expansion), so it runs even when the
 * schema found problems elsewhere, and must never throw. Injected by the caller: config imports nothing above it.
 */
export type ConfigCheck = (raw: unknown, env: CheckEnv) => readonly CheckProblem[];

/** `routes[1].plugins[0].rewrite` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** `file:line:col path: message [CODE]` (no line and column when the file could not be read). */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : `${p.file}:`;
  return `${where} ${p.path ? p.path + ': ' : ''}${p.message} [${p.code}]`;
}

/** The closest candidate within a small edit distance, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** Where problems are located: the parsed document and its line counter. */
export class Locator {
  readonly doc: Document;
  private readonly lc: LineCounter;
  readonly file: string;

  constructor(doc: Document, lc: LineCounter, file: string) {
    this.doc = doc;
    this.lc = lc;
    this.file = file;
  }

  problem(code: ErrorCode, path: readonly PropertyKey[], message: string, offset?: number): ConfigProblem {
    const pos = this.lc.linePos(offset ?? this.nodeOffset(path));
    return { code, file: this.file, line: pos.line, column: pos.col, path: formatPath(path), message };
  }

  /** Offset of the deepest node that exists along `path`. */
  nodeOffset(path: readonly PropertyKey[]): number {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n) as unknown[], true);
      if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range))
        return node.range[0] as number;
    }
    return 0;
  }

  /** Offset of `key` itself in the map at `path` (falls back to the map). */
  keyOffset(path: readonly PropertyKey[], key: string): number {
    const parent = path.length === 0 ? this.doc.contents : this.doc.getIn(path as unknown[], true);
    if (isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === key && item.key.range)
          return item.key.range[0];
      }
    }
    return this.nodeOffset(path);
  }

  /** The map key that starts at `offset`, with the path of its map (for "key given twice"). */
  keyAt(offset: number): { path: PropertyKey[]; key: string } | undefined {
    const walk = (node: unknown, path: PropertyKey[]): { path: PropertyKey[]; key: string } | undefined => {
      if (isMap(node)) {
        for (const item of node.items) {
          if (!isScalar(item.key)) continue;
          const key = String(item.key.value);
          if (item.key.range?.[0] === offset) return { path, key };
          const found = walk(item.value, [...path, key]);
          if (found) return found;
        }
      } else if (isSeq(node)) {
        for (let i = 0; i < node.items.length; i++) {
          const found = walk(node.items[i], [...path, i]);
          if (found) return found;
        }
      }
      return undefined;
    };
    return walk(this.doc.contents, []);
  }

  has(path: readonly PropertyKey[]): boolean {
    return path.length === 0 ? this.doc.contents !== null : this.doc.hasIn(path as unknown[]);
  }

  /** "the string \"8080\"", "a list", "a map": what the file has at `path` (never the value of a secret). */
  describe(path: readonly PropertyKey[]): string {
    const node = path.length === 0 ? this.doc.contents : this.doc.getIn(path as unknown[], true);
    if (isSecretPath(path) && !isMap(node) && !isSeq(node)) {
      const value = isScalar(node) ? node.value : node;
      if (value === null || value === undefined) return 'nothing (an empty value)';
      return typeof value === 'string'
        ? `a string of ${value.length} characters (not shown: a secret)`
        : `a ${typeof value} (not shown: a secret)`;
    }
    if (isMap(node)) {
      const keys = node.items.map((p) => (isPair(p) && isScalar(p.key) ? JSON.stringify(p.key.value) : '?'));
      return keys.length === 0
        ? 'an empty map'
        : `a map with key${keys.length > 1 ? 's' : ''} ${keys.slice(0, 4).join(', ')}`;
    }
    if (isSeq(node)) return node.items.length === 0 ? 'an empty list' : `a list of ${node.items.length}`;
    const value = isScalar(node) ? node.value : node;
    if (value === null || value === undefined) return 'nothing (an empty value)';
    if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
    if (typeof value === 'number') return `the number ${value}`;
    if (typeof value === 'boolean') return `${value}`;
    return typeof value;
  }
}

/** Keys whose values are credentials: a problem message says what is wrong with them, never what they are. */
const SECRET_KEYS = new Set(['secret', 'clientSecret', 'password', 'passwordHash', 'apiKeys', 'token']);

/** A path at or under a credential key, or the Redis URL (it may carry a password). */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  if (path.some((p) => typeof p === 'string' && SECRET_KEYS.has(p))) return true;
  return path.length === 3 && path[0] === 'stores' && path[2] === 'url';
}

const EXPECTED: Record<string, string> = {
  array: 'a list',
  object: 'a map',
  record: 'a map',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  map: 'a map',
};

// Keys that look right but belong elsewhere.
const KEY_HINTS: Record<string, string> = {
  maxHeaderSize: 'header limits are set globally (limits) or per listener (listeners[].limits), not per route',
  headerTimeout: 'header limits are set globally (limits) or per listener (listeners[].limits), not per route',
  maxHeaderCount: 'header limits are set globally (limits) or per listener (listeners[].limits), not per route',
  maxUriLength: 'header limits are set globally (limits) or per listener (listeners[].limits), not per route',
};

export function problemsFromIssue(
  issue: z.core.$ZodIssue,
  at: Locator,
  root: z.ZodType,
  plugins: PluginSchemas,
): ConfigProblem[] {
  const path = issue.path as PropertyKey[];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeys(root, path, plugins);
      return issue.keys.map((key) => {
        let message = `unknown key "${key}"`;
        const guess = allowed && closest(key, allowed);
        if (guess) message += `; did you mean "${guess}"?`;
        if (allowed) message += ` (allowed here: ${allowed.join(', ')})`;
        if (KEY_HINTS[key] && path.at(-1) === 'limits' && path[0] === 'routes') message += `; ${KEY_HINTS[key]}`;
        return at.problem('TP_CONFIG_UNKNOWN_KEY', [...path, key], message, at.keyOffset(path, key));
      });
    }
    case 'invalid_key': {
      const key = String(path.at(-1));
      const parent = path.slice(0, -1);
      const reason = issue.issues.map((i) => i.message).join('; ');
      return [at.problem('TP_CONFIG_INVALID', path, `invalid key "${key}": ${reason}`, at.keyOffset(parent, key))];
    }
    case 'custom': {
      const params = (issue.params ?? {}) as { turnpikeCode?: ErrorCode; atKey?: string };
      const code = params.turnpikeCode ?? 'TP_CONFIG_INVALID';
      if (params.atKey)
        return [at.problem(code, [...path, params.atKey], issue.message, at.keyOffset(path, params.atKey))];
      return [at.problem(code, path, issue.message)];
    }
    default:
      break;
  }
  if (path.length > 0 && !at.has(path)) {
    const wanted = expected(issue).replace(/^expected /, '');
    return [
      at.problem('TP_CONFIG_INVALID', path, `missing required key "${String(path.at(-1))}" (expected ${wanted})`),
    ];
  }
  const got = at.describe(path);
  switch (issue.code) {
    case 'invalid_type':
      return [at.problem('TP_CONFIG_INVALID', path, `expected ${expected(issue)}, got ${got}`)];
    case 'invalid_value':
      return [at.problem('TP_CONFIG_INVALID', path, `expected ${expected(issue)}, got ${got}`)];
    case 'invalid_union':
      return [at.problem('TP_CONFIG_INVALID', path, `${expected(issue)}, got ${got}`)];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const cmp =
        issue.code === 'too_small'
          ? issue.inclusive
            ? 'at least'
            : 'more than'
          : issue.inclusive
            ? 'at most'
            : 'less than';
      const what =
        issue.origin === 'array'
          ? ` item${Number(bound) === 1 ? '' : 's'}`
          : issue.origin === 'string'
            ? ' characters'
            : '';
      return [at.problem('TP_CONFIG_INVALID', path, `expected ${cmp} ${bound}${what}, got ${got}`)];
    }
    default:
      return [at.problem('TP_CONFIG_INVALID', path, issue.message)];
  }
}

function expected(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') return EXPECTED[issue.expected] ?? issue.expected;
  if (issue.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  if (issue.code === 'invalid_union') {
    // A union with its own message (the schema says which forms it takes), else the branches' expectations.
    if (issue.message && issue.message !== 'Invalid input') return issue.message;
    const forms = new Set<string>();
    for (const branch of issue.errors) {
      const first = branch[0];
      if (first?.code === 'invalid_type' && first.path.length === 0)
        forms.add(EXPECTED[first.expected] ?? first.expected);
      else if (first)
        forms.add(first.path.length ? `${formatPath(first.path as PropertyKey[])}: ${first.message}` : first.message);
    }
    return `expected ${[...forms].join(', or ')}`;
  }
  return issue.message;
}

interface SchemaDef {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
}

const defOf = (s: z.ZodType): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

function keysOf(s: z.ZodType): string[] | undefined {
  const d = defOf(unwrap(s));
  if (d.type === 'object' && d.shape) return Object.keys(d.shape);
  if (d.type === 'union' && d.options) {
    const all = d.options.flatMap((o) => keysOf(o) ?? []);
    return all.length ? [...new Set(all)] : undefined;
  }
  return undefined;
}

function step(s: z.ZodType, part: PropertyKey): z.ZodType | undefined {
  const d = defOf(unwrap(s));
  if (d.type === 'object' && d.shape) return d.shape[String(part)];
  if (d.type === 'array' && typeof part === 'number') return d.element;
  if (d.type === 'record') return d.valueType;
  if (d.type === 'union' && d.options) {
    for (const option of d.options) {
      const next = step(option, part);
      if (next) return next;
    }
  }
  return undefined;
}

/** The keys the schema allows in the map at `path` (plugin configs come from their own schemas). */
export function allowedKeys(
  root: z.ZodType,
  path: readonly PropertyKey[],
  plugins: PluginSchemas,
): string[] | undefined {
  let schema: z.ZodType | undefined = root;
  let rest = path;
  for (let i = 0; i + 2 < path.length; i++) {
    const name = path[i + 2];
    if (path[i] === 'plugins' && typeof path[i + 1] === 'number' && typeof name === 'string' && plugins.has(name)) {
      schema = plugins.get(name);
      rest = path.slice(i + 3);
      break;
    }
  }
  for (const part of rest) {
    if (!schema) return undefined;
    schema = step(schema, part);
  }
  return schema ? keysOf(schema) : undefined;
}
