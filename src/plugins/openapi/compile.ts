// An API description compiled once at load: ajv validators for each operation's parameters, request bodies and
// responses, and the spec's paths as matchers. The document is added to ajv whole under one id, so every local
// $ref resolves against it, and each validator is a $ref to the JSON pointer of its schema.
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { atPointer, escapePointer, SpecError, type Json, type JsonObject, type LoadedSpec } from './spec.ts';

const DOC_ID = 'https://turnpike.invalid/api-description';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const LOCATIONS = ['path', 'query', 'header', 'cookie'] as const;
/** Headers OpenAPI says parameters do not describe (RFC-defined, checked elsewhere). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);

type Location = (typeof LOCATIONS)[number];
type FormatsPlugin = (ajv: Ajv) => Ajv;
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  addFormatsModule) as unknown as FormatsPlugin;

export interface Param {
  readonly name: string;
  readonly in: Location;
  /** Values arrive as a list (an array schema): split by this separator when not exploded, or null. */
  readonly split: string | null;
  readonly deepObject: boolean;
}

export interface MediaValidator {
  /** Lowercase media range as the spec writes it (`application/json`, `image/*`). */
  readonly range: string;
  readonly json: boolean;
  readonly validate: ValidateFunction | null;
}

export interface Operation {
  /** `POST /checkout/{id}` */
  readonly label: string;
  readonly operationId: string | null;
  readonly params: readonly Param[];
  /** Validates `{ path, query, header, cookie }` (string values coerced to the schemas' types), or null. */
  readonly validateParams: ValidateFunction | null;
  readonly body: { readonly required: boolean; readonly media: readonly MediaValidator[] } | null;
  /** By status key as written (`200`, `2XX`, `default`). */
  readonly responses: ReadonlyMap<string, readonly MediaValidator[]>;
}

export interface PathEntry {
  readonly template: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly operations: ReadonlyMap<string, Operation>;
  /** The Allow header of a 405. */
  readonly allow: string;
}

export interface CompiledSpec {
  readonly kind: 'openapi' | 'schema';
  /** Concrete paths before templated ones (fewest parameters first). */
  readonly paths: readonly PathEntry[];
  /** Base paths of `servers` (`/v1`), '' when none. */
  readonly bases: readonly string[];
  /** `schema: FILE`: the body's validator. */
  readonly bodySchema: ValidateFunction | null;
}

function makeAjv(spec: LoadedSpec, coerce: boolean): Ajv {
  const options: Options = {
    allErrors: true,
    strict: false,
    logger: false,
    coerceTypes: coerce ? 'array' : false,
  };
  const ajv = spec.dialect === '2020-12' ? new Ajv2020(options) : new Ajv(options);
  addFormats(ajv);
  // OpenAPI's own formats.
  const int = (bits: number) => (n: number) => Number.isInteger(n) && Math.abs(n) <= 2 ** (bits - 1);
  ajv.addFormat('int32', { type: 'number', validate: int(32) });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  ajv.addFormat('binary', true);
  ajv.addFormat('password', true);
  ajv.addSchema({ ...spec.doc, $id: DOC_ID } as object, undefined, undefined, false);
  return ajv;
}

const pointerOf = (path: readonly (string | number)[]): string =>
  '#' + path.map((p) => '/' + encodeURIComponent(escapePointer(String(p)))).join('');

export function compileSpec(spec: LoadedSpec): CompiledSpec {
  const plain = makeAjv(spec, false);
  const compile = (ajv: Ajv, schema: object, at: readonly (string | number)[]): ValidateFunction => {
    try {
      return ajv.compile(schema);
    } catch (err) {
      throw new SpecError(`${spec.where(at)}: the schema does not compile: ${(err as Error).message}`);
    }
  };
  if (spec.kind === 'schema')
    return { kind: 'schema', paths: [], bases: [''], bodySchema: compile(plain, { $ref: DOC_ID + '#' }, []) };
  const coercing = makeAjv(spec, true);
  const doc = spec.doc;
  /** Follows `$ref`s of OpenAPI objects (parameters, request bodies, responses) to the object and its path. */
  const deref = (
    value: Json | undefined,
    at: (string | number)[],
  ): { value: JsonObject; at: (string | number)[] } | null => {
    for (let hops = 0; hops < 20; hops++) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
      if (typeof value.$ref !== 'string') return { value, at };
      at = value.$ref
        .slice(2)
        .split('/')
        .map((p) => decodeURIComponent(p).replace(/~1/g, '/').replace(/~0/g, '~'));
      value = atPointer(doc, value.$ref);
    }
    throw new SpecError(`${spec.where(at)}: $ref loops`);
  };
  const mediaOf = (content: Json | undefined, at: (string | number)[]): MediaValidator[] => {
    if (typeof content !== 'object' || content === null || Array.isArray(content)) return [];
    return Object.entries(content).map(([range, media]) => {
      const type = range.toLowerCase().split(';')[0]!.trim();
      const json = /^application\/([\w.-]+\+)?json$/.test(type) || type === '*/*' || type === 'application/*';
      const hasSchema =
        typeof media === 'object' && media !== null && !Array.isArray(media) && media.schema !== undefined;
      const where = [...at, range, 'schema'];
      return {
        range: type,
        json,
        validate: hasSchema && json ? compile(plain, { $ref: DOC_ID + pointerOf(where) }, where) : null,
      };
    });
  };

  const paths: PathEntry[] = [];
  for (const [template, rawItem] of Object.entries((doc.paths ?? {}) as JsonObject)) {
    const item = deref(rawItem, ['paths', template]);
    if (item === null) continue;
    const shared = Array.isArray(item.value.parameters) ? item.value.parameters : [];
    const operations = new Map<string, Operation>();
    for (const method of METHODS) {
      const opAt = [...item.at, method];
      const op = item.value[method];
      if (typeof op !== 'object' || op === null || Array.isArray(op)) continue;
      // Operation parameters override the path item's of the same name and place.
      const byKey = new Map<string, { p: JsonObject; at: (string | number)[] }>();
      const own = Array.isArray(op.parameters) ? op.parameters : [];
      for (const [list, base] of [
        [shared, [...item.at, 'parameters']],
        [own, [...opAt, 'parameters']],
      ] as const)
        list.forEach((raw, i) => {
          const found = deref(raw, [...base, i]);
          if (found === null || typeof found.value.name !== 'string' || typeof found.value.in !== 'string') return;
          const name = found.value.in === 'header' ? found.value.name.toLowerCase() : found.value.name;
          byKey.set(`${found.value.in}:${name}`, { p: found.value, at: found.at });
        });
      const params: Param[] = [];
      const groups: Record<Location, { properties: JsonObject; required: string[] }> = {
        path: { properties: {}, required: [] },
        query: { properties: {}, required: [] },
        header: { properties: {}, required: [] },
        cookie: { properties: {}, required: [] },
      };
      for (const { p, at } of byKey.values()) {
        const where = p.in as Location;
        if (!LOCATIONS.includes(where)) continue;
        const name = where === 'header' ? String(p.name).toLowerCase() : String(p.name);
        if (where === 'header' && IGNORED_HEADERS.has(name)) continue;
        const schema = p.schema === undefined ? null : deref(p.schema, [...at, 'schema']);
        const type = schema?.value.type;
        const isArray = type === 'array' || (Array.isArray(type) && type.includes('array'));
        const style =
          typeof p.style === 'string' ? p.style : where === 'query' || where === 'cookie' ? 'form' : 'simple';
        const explode = typeof p.explode === 'boolean' ? p.explode : style === 'form';
        const split = !isArray
          ? null
          : explode && where === 'query'
            ? null
            : style === 'spaceDelimited'
              ? ' '
              : style === 'pipeDelimited'
                ? '|'
                : ',';
        params.push({ name, in: where, split, deepObject: style === 'deepObject' });
        if (p.schema !== undefined) groups[where].properties[name] = { $ref: DOC_ID + pointerOf([...at, 'schema']) };
        if (p.required === true || where === 'path') groups[where].required.push(name);
      }
      const properties: JsonObject = {};
      for (const where of LOCATIONS) properties[where] = { type: 'object', ...groups[where] };
      const validateParams =
        params.length === 0 ? null : compile(coercing, { type: 'object', properties }, [...opAt, 'parameters']);
      let body: Operation['body'] = null;
      const requestBody = op.requestBody === undefined ? null : deref(op.requestBody, [...opAt, 'requestBody']);
      if (requestBody !== null)
        body = {
          required: requestBody.value.required === true,
          media: mediaOf(requestBody.value.content, [...requestBody.at, 'content']),
        };
      const responses = new Map<string, MediaValidator[]>();
      if (typeof op.responses === 'object' && op.responses !== null && !Array.isArray(op.responses))
        for (const key of Object.keys(op.responses)) {
          const r = deref(op.responses[key], [...opAt, 'responses', key]);
          if (r !== null) responses.set(key.toUpperCase(), mediaOf(r.value.content, [...r.at, 'content']));
        }
      operations.set(method.toUpperCase(), {
        label: `${method.toUpperCase()} ${template}`,
        operationId: typeof op.operationId === 'string' ? op.operationId : null,
        params,
        validateParams,
        body,
        responses,
      });
    }
    // HEAD is answered as GET when the spec does not describe it.
    if (operations.has('GET') && !operations.has('HEAD')) operations.set('HEAD', operations.get('GET')!);
    const names: string[] = [];
    const source = template
      .split(/(\{[^}]*\})/)
      .map((part) => {
        if (part.startsWith('{') && part.endsWith('}')) {
          names.push(part.slice(1, -1));
          return '([^/]+)';
        }
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('');
    paths.push({
      template,
      pattern: new RegExp(`^${source}$`),
      names,
      operations,
      allow: [...operations.keys()].join(', '),
    });
  }
  paths.sort((a, b) => a.names.length - b.names.length || b.template.length - a.template.length);
  return { kind: 'openapi', paths, bases: basesOf(doc), bodySchema: null };
}

/** The path parts of `servers` URLs (`https://api.example.com/v1` → `/v1`); [''] when none has one. */
function basesOf(doc: JsonObject): string[] {
  const bases = new Set<string>();
  if (Array.isArray(doc.servers))
    for (const s of doc.servers) {
      const url = typeof s === 'object' && s !== null && !Array.isArray(s) ? s.url : undefined;
      if (typeof url !== 'string' || url.includes('{')) continue;
      const path = new URL(url, 'http://base.invalid').pathname.replace(/\/+$/, '');
      bases.add(path);
    }
  if (bases.size === 0) bases.add('');
  return [...bases].sort((a, b) => b.length - a.length);
}

export type { ErrorObject };
