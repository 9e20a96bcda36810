// One request against a compiled API description: which operation it is (404, 405 with Allow), then its
// parameters, content type and JSON body, as a list of errors each with where (`in`), a JSON pointer and a message.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { cookieValue } from '../../http/cookies.ts';
import { parseQuery } from '../../http/query.ts';
import type { RequestContext } from '../../request-context.ts';
import type { CompiledSpec, MediaValidator, Operation, PathEntry } from './compile.ts';
import { escapePointer } from './spec.ts';

/** One thing wrong with a request or a response: where, the JSON pointer inside that part, and what. */
export interface ValidationError {
  readonly in: 'path' | 'query' | 'header' | 'cookie' | 'body';
  readonly pointer: string;
  readonly message: string;
}

export type Found =
  | { readonly kind: 'operation'; readonly operation: Operation; readonly pathParams: Record<string, string> }
  | { readonly kind: 'no-path' }
  | { readonly kind: 'no-method'; readonly allow: string };

/** The spec's operation for this method and path (concrete paths first), or why there is none. */
export function findOperation(spec: CompiledSpec, method: string, path: string): Found {
  let methodMissing: PathEntry | null = null;
  for (const base of spec.bases) {
    if (base !== '' && !(path === base || path.startsWith(base + '/'))) continue;
    const rest = path.slice(base.length) || '/';
    for (const entry of spec.paths) {
      const m = entry.pattern.exec(rest);
      if (m === null) continue;
      const operation = entry.operations.get(method);
      if (operation === undefined) {
        methodMissing ??= entry;
        continue;
      }
      const pathParams: Record<string, string> = {};
      entry.names.forEach((name, i) => {
        pathParams[name] = decode(m[i + 1]!);
      });
      return { kind: 'operation', operation, pathParams };
    }
  }
  return methodMissing === null ? { kind: 'no-path' } : { kind: 'no-method', allow: methodMissing.allow };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The parameters of `operation` as the request carries them (strings; lists for array schemas). */
function paramValues(ctx: RequestContext, operation: Operation, pathParams: Record<string, string>): object {
  const out = { path: {}, query: {}, header: {}, cookie: {} } as Record<string, Record<string, unknown>>;
  const query = operation.params.some((p) => p.in === 'query') ? parseQuery(ctx.query) : null;
  for (const p of operation.params) {
    let values: string[] | undefined;
    if (p.in === 'path') values = pathParams[p.name] === undefined ? undefined : [pathParams[p.name]!];
    else if (p.in === 'query') {
      if (p.deepObject) {
        const obj: Record<string, string> = {};
        for (const [key, v] of query!) {
          if (key.startsWith(p.name + '[') && key.endsWith(']')) obj[key.slice(p.name.length + 1, -1)] = v[0]!;
        }
        if (Object.keys(obj).length > 0) out.query![p.name] = obj;
        continue;
      }
      values = query!.get(p.name);
    } else if (p.in === 'header') {
      const h = ctx.req.headers[p.name];
      values = h === undefined ? undefined : Array.isArray(h) ? h : [h];
    } else {
      const v = cookieValue(String(ctx.req.headers.cookie ?? ''), p.name);
      values = v === undefined ? undefined : [v];
    }
    if (values === undefined) continue;
    if (p.split !== null) values = values.flatMap((v) => (v === '' ? [] : v.split(p.split!)));
    out[p.in]![p.name] = p.split !== null || values.length > 1 ? values : values[0];
  }
  return out;
}

/** ajv's errors as ours: the first pointer token of a parameter error is its place. */
export function toErrors(
  errors: readonly ErrorObject[] | null | undefined,
  part: ValidationError['in'] | null,
): ValidationError[] {
  const out: ValidationError[] = [];
  for (const e of errors ?? []) {
    let pointer = e.instancePath;
    let message = e.message ?? 'is not valid';
    if (e.keyword === 'required') {
      pointer += '/' + escapePointer(String((e.params as { missingProperty: string }).missingProperty));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      pointer += '/' + escapePointer(String((e.params as { additionalProperty: string }).additionalProperty));
      message = 'is not allowed';
    }
    let where = part;
    if (where === null) {
      const [, first = '', ...rest] = pointer.split('/');
      where = first as ValidationError['in'];
      pointer = rest.length === 0 ? '' : '/' + rest.join('/');
    }
    out.push({ in: where, pointer, message });
  }
  return out;
}

export function checkParams(
  ctx: RequestContext,
  operation: Operation,
  pathParams: Record<string, string>,
): ValidationError[] {
  const validate = operation.validateParams;
  if (validate === null || validate(paramValues(ctx, operation, pathParams))) return [];
  return toErrors(validate.errors, null);
}

/** The media type of the spec that takes `type` (exact, then `type/*`, then `*∕*`), or undefined. */
export function mediaFor(media: readonly MediaValidator[], type: string): MediaValidator | undefined {
  const main = type.split('/')[0] + '/*';
  return (
    media.find((m) => m.range === type) ?? media.find((m) => m.range === main) ?? media.find((m) => m.range === '*/*')
  );
}

/** The JSON body against `validate`: a body that does not parse is one error. */
export function checkJson(validate: ValidateFunction, body: Buffer, part: 'body'): ValidationError[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return [{ in: part, pointer: '', message: `is not JSON: ${(err as Error).message}` }];
  }
  return validate(doc) ? [] : toErrors(validate.errors, part);
}

/** A Content-Type without parameters, lowercase; '' when absent. */
export function mediaType(value: string | undefined): string {
  return value === undefined ? '' : value.split(';')[0]!.trim().toLowerCase();
}
