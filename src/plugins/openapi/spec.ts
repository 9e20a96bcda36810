// Loading an API description for request-validation: an OpenAPI 3.0/3.1 document or a JSON Schema, YAML or JSON,
// read once at load. Local $refs (#/...) are checked here, so a broken one is a config error with the spec file's
// line; OpenAPI 3.0's schema dialect (nullable, boolean exclusiveMinimum) is rewritten into draft-07 JSON Schema.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Which validator a document needs: draft-07 (OpenAPI 3.0, draft-07 schemas) or 2020-12 (OpenAPI 3.1). */
export type Dialect = 'draft-07' | '2020-12';

export interface LoadedSpec {
  readonly kind: 'openapi' | 'schema';
  readonly dialect: Dialect;
  /** The document, 3.0 schemas rewritten for draft-07. */
  readonly doc: JsonObject;
  /** `file:line:column` of the node at a path of the document (for problems found after loading). */
  readonly where: (path: readonly (string | number)[]) => string;
}

/** A problem in the spec file, already placed (`specs/checkout.yaml:12:7: ...`). */
export class SpecError extends Error {}

/** Values that are data, not schemas: never rewritten, their `$ref` members are not references. */
const DATA_KEYS = new Set(['example', 'examples', 'enum', 'default', 'const']);

export function resolveSpecPath(file: string, configDir: string): string {
  return isAbsolute(file) ? file : resolve(configDir, file);
}

/** Reads and checks `file` (relative to configDir); throws SpecError with the spec file's line. */
export function loadSpec(file: string, configDir: string, kind: 'openapi' | 'schema'): LoadedSpec {
  const path = resolveSpecPath(file, configDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SpecError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = new LineCounter();
  const parsed = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (parsed.errors.length > 0) {
    const e = parsed.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new SpecError(`${file}:${pos.line}:${pos.col}: not YAML or JSON: ${e.message.split('\n')[0]}`);
  }
  const where = (at: readonly (string | number)[]): string => `${file}:${lineOf(parsed, lines, at)}`;
  const doc = parsed.toJS({ maxAliasCount: 100 }) as Json;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new SpecError(`${where([])}: expected an object (an OpenAPI document or a JSON Schema)`);
  let dialect: Dialect;
  if (kind === 'openapi') {
    const version = typeof doc.openapi === 'string' ? doc.openapi : '';
    if (/^3\.0\.\d+$/.test(version)) dialect = 'draft-07';
    else if (/^3\.1\.\d+$/.test(version)) dialect = '2020-12';
    else
      throw new SpecError(
        `${where(doc.openapi === undefined ? [] : ['openapi'])}: expected "openapi: 3.0.x" or "openapi: 3.1.x" (found ${JSON.stringify(doc.openapi ?? null)})`,
      );
    if (doc.paths !== undefined && (typeof doc.paths !== 'object' || doc.paths === null || Array.isArray(doc.paths)))
      throw new SpecError(`${where(['paths'])}: paths must be an object`);
  } else {
    const declared = typeof doc.$schema === 'string' ? doc.$schema : '';
    dialect = /2020-12|2019-09/.test(declared) ? '2020-12' : 'draft-07';
  }
  checkRefs(doc, doc, [], where);
  if (kind === 'openapi' && dialect === 'draft-07') rewrite30(doc);
  return { kind, dialect, doc, where };
}

/** `line:column` of the node at `path` (or of its nearest existing parent). */
function lineOf(doc: Document, lines: LineCounter, path: readonly (string | number)[]): string {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range !== undefined) {
      const pos = lines.linePos(range[0]);
      return `${pos.line}:${pos.col}`;
    }
  }
  return '1:1';
}

export function escapePointer(part: string): string {
  return part.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The value at a JSON pointer (`#/components/schemas/Order`), or undefined. */
export function atPointer(doc: Json, pointer: string): Json | undefined {
  if (pointer === '#' || pointer === '#/') return doc;
  let node: Json | undefined = doc;
  for (const raw of pointer.slice(2).split('/')) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null) return undefined;
    node = Array.isArray(node) ? node[Number(part)] : node[part];
  }
  return node;
}

/** Every `$ref` is local and points at something. */
function checkRefs(
  root: Json,
  node: Json,
  path: (string | number)[],
  where: (p: readonly (string | number)[]) => string,
): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    node.forEach((v, i) => checkRefs(root, v, [...path, i], where));
    return;
  }
  const ref = node.$ref;
  if (typeof ref === 'string') {
    if (!ref.startsWith('#'))
      throw new SpecError(`${where([...path, '$ref'])}: only local $refs (#/...) are supported: ${ref}`);
    if (atPointer(root, ref) === undefined)
      throw new SpecError(`${where([...path, '$ref'])}: $ref ${ref} points at nothing in the document`);
  }
  for (const [key, value] of Object.entries(node)) {
    // `properties`, `parameters` are maps of names: a property called `enum` is still a schema.
    if (DATA_KEYS.has(key) && !isNameMap(path)) continue;
    checkRefs(root, value, [...path, key], where);
  }
}

const isNameMap = (path: readonly (string | number)[]): boolean =>
  path.length > 0 && ['properties', 'patternProperties', 'schemas', 'parameters'].includes(String(path.at(-1)));

/**
 * OpenAPI 3.0's schema objects as draft-07: `nullable: true` admits null (ajv knows `nullable` beside `type`; an
 * enum gets null too, and a schema without `type` becomes anyOf it or null), boolean exclusiveMinimum/Maximum
 * become the draft-07 numbers.
 */
function rewrite30(node: Json, parentKey = ''): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const v of node) rewrite30(v);
    return;
  }
  const isNames = ['properties', 'patternProperties', 'schemas'].includes(parentKey);
  if (!isNames) {
    for (const [bound, limit] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      if (typeof node[bound] !== 'boolean') continue;
      if (node[bound] === true && typeof node[limit] === 'number') {
        node[bound] = node[limit];
        delete node[limit];
      } else delete node[bound];
    }
    if (typeof node.nullable === 'boolean') {
      const nullable = node.nullable;
      if (nullable && Array.isArray(node.enum) && !node.enum.includes(null)) node.enum.push(null);
      if (node.type === undefined) {
        delete node.nullable;
        if (nullable) {
          const rest: JsonObject = { ...node };
          for (const key of Object.keys(node)) delete node[key];
          node.anyOf = [rest, { type: 'null' }];
          rewrite30(rest);
          return;
        }
      }
    }
  }
  for (const [key, value] of Object.entries(node)) {
    if (DATA_KEYS.has(key) && !isNames) continue;
    rewrite30(value, key);
  }
}
