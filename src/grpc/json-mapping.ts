// Proto3 JSON both ways, as Envoy's transcoder reads and writes it: a request's JSON may name fields by their
// JSON (lowerCamel) or proto names; unknown fields and values of the wrong type are refused with a message naming
// the field; path and query values (strings) are converted to the field's type. Answers use JSON names unless
// `preserveProtoFieldNames`, and print fields at their default value only with `alwaysPrintPrimitiveFields`.
import type * as Protobuf from 'protobufjs';
import { protobuf } from './proto-load.ts';

/** A request whose JSON, path or query does not fit the message (400). */
export class BadMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadMessageError';
  }
}

export interface JsonOptions {
  readonly preserveProtoFieldNames: boolean;
  readonly alwaysPrintPrimitiveFields: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

const NUMBER_TYPES = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** The field of `type` called `name` (proto name, or JSON name). */
export function fieldOf(type: Protobuf.Type, name: string): Protobuf.Field | undefined {
  return type.fields[name] ?? type.fieldsArray.find((f) => jsonName(f) === name);
}

export function jsonName(field: Protobuf.Field): string {
  const option = field.options?.json_name;
  return typeof option === 'string' ? option : protobuf().util.camelCase(field.name);
}

/** `json` as an object protobufjs's fromObject takes (proto names), checked against `type`. */
export function fromJson(type: Protobuf.Type, json: unknown, where = ''): Obj {
  if (!isObj(json)) throw new BadMessageError(`${where || 'the body'}: expected a JSON object for ${type.name}`);
  const out: Obj = {};
  for (const [key, value] of Object.entries(json)) {
    const field = fieldOf(type, key);
    if (field === undefined) throw new BadMessageError(`${at(where, key)}: ${type.name} has no field "${key}"`);
    if (value === null) continue; // proto3 JSON: null is the default value
    out[field.name] = fieldValue(field, value, at(where, key));
  }
  return out;
}

function fieldValue(field: Protobuf.Field, value: unknown, where: string): unknown {
  if (field.map) {
    if (!isObj(value)) throw new BadMessageError(`${where}: expected a JSON object (a map)`);
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = singleValue(field, v, `${where}.${k}`);
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new BadMessageError(`${where}: expected a JSON array`);
    return value.map((v, i) => singleValue(field, v, `${where}[${i}]`));
  }
  return singleValue(field, value, where);
}

function singleValue(field: Protobuf.Field, value: unknown, where: string): unknown {
  const pb = protobuf();
  const resolved = field.resolvedType;
  if (resolved instanceof pb.Type) return fromJson(resolved, value, where);
  if (resolved instanceof pb.Enum) {
    if (typeof value === 'string' && value in resolved.values) return value;
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    throw new BadMessageError(`${where}: expected one of ${Object.keys(resolved.values).join(', ')}`);
  }
  const t = field.type;
  if (NUMBER_TYPES.has(t)) {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n === 'number' && !Number.isNaN(n) && (t === 'double' || t === 'float' || Number.isInteger(n))) return n;
    if (t === 'double' || t === 'float') {
      if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
    }
    throw new BadMessageError(`${where}: expected ${t === 'double' || t === 'float' ? 'a number' : 'an integer'}`);
  }
  if (LONG_TYPES.has(t)) {
    if ((typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^-?\d+$/.test(value)))
      return value;
    throw new BadMessageError(`${where}: expected an integer (a number or a string of digits)`);
  }
  if (t === 'bool') {
    if (typeof value === 'boolean') return value;
    throw new BadMessageError(`${where}: expected true or false`);
  }
  if (t === 'string') {
    if (typeof value === 'string') return value;
    throw new BadMessageError(`${where}: expected a string`);
  }
  if (t === 'bytes') {
    if (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return value;
    throw new BadMessageError(`${where}: expected base64 bytes`);
  }
  return value;
}

/**
 * Sets the field at `path` ("name", "book.shelf") of `target` (proto names, as fromJson makes) from a path or query
 * string, converted to the field's type; a repeated field gets the value appended.
 */
export function setFromString(type: Protobuf.Type, target: Obj, path: string, value: string, what: string): void {
  const names = path.split('.');
  let t = type;
  let o = target;
  for (let i = 0; i < names.length; i++) {
    const field = fieldOf(t, names[i]!);
    if (field === undefined) throw new BadMessageError(`${what} "${path}": ${t.name} has no field "${names[i]}"`);
    if (i === names.length - 1) {
      if (field.map || field.resolvedType instanceof protobuf().Type)
        throw new BadMessageError(`${what} "${path}" names a message or map field, which a string cannot set`);
      const converted = singleValue(field, stringToJson(field, value), `${what} "${path}"`);
      if (field.repeated) {
        const list = (o[field.name] ??= []) as unknown[];
        list.push(converted);
      } else o[field.name] = converted;
      return;
    }
    const next = field.resolvedType;
    if (!(next instanceof protobuf().Type) || field.repeated || field.map)
      throw new BadMessageError(`${what} "${path}": "${names[i]}" is not a message field`);
    const child = o[field.name];
    o = isObj(child) ? child : (o[field.name] = {});
    t = next;
  }
}

/** A string from a URL as the JSON value it stands for (numbers and booleans are JSON strings in the URL). */
function stringToJson(field: Protobuf.Field, value: string): unknown {
  if (field.type === 'bool') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

/** Whether the field at `path` is one that path variables or the body already set (query parameters skip it). */
export function coversField(bound: readonly string[], name: string): boolean {
  return bound.some((b) => name === b || name.startsWith(`${b}.`) || b.startsWith(`${name}.`));
}

/** A decoded message as the JSON the client gets. */
export function toJson(type: Protobuf.Type, message: Protobuf.Message, options: JsonOptions): Obj {
  const all = options.alwaysPrintPrimitiveFields;
  const object = type.toObject(message, {
    longs: String,
    enums: String,
    bytes: String,
    json: true,
    defaults: all,
    arrays: all,
    objects: all,
  });
  return renamed(type, object, options.preserveProtoFieldNames, all);
}

/**
 * A proto3 scalar at its default value: left out unless alwaysPrintPrimitiveFields, as Envoy does (protobufjs
 * encodes a zero its caller set explicitly, so one may be on the wire). Fields in a oneof or `optional` keep it.
 */
function isDefault(field: Protobuf.Field, value: unknown): boolean {
  if (field.repeated || field.map || field.partOf !== null) return false;
  const sub = field.resolvedType;
  if (sub instanceof protobuf().Enum) return value === sub.valuesById[0] || value === 0;
  return value === 0 || value === '0' || value === '' || value === false;
}

/** The keys of `object` (proto names) as JSON names, recursively; unset messages (null) are left out. */
function renamed(type: Protobuf.Type, object: Obj, preserve: boolean, all: boolean): Obj {
  const pb = protobuf();
  const out: Obj = {};
  for (const [key, value] of Object.entries(object)) {
    if (value === null || value === undefined) continue;
    const field = type.fields[key];
    if (field === undefined || (!all && isDefault(field, value))) continue;
    const name = preserve ? key : jsonName(field);
    const sub = field.resolvedType;
    if (!(sub instanceof pb.Type)) out[name] = value;
    else if (field.map)
      out[name] = Object.fromEntries(
        Object.entries(value as Obj).map(([k, v]) => [k, renamed(sub, v as Obj, preserve, all)]),
      );
    else if (Array.isArray(value)) out[name] = value.map((v) => renamed(sub, v as Obj, preserve, all));
    else out[name] = renamed(sub, value as Obj, preserve, all);
  }
  return out;
}

function at(where: string, key: string): string {
  return where === '' ? key : `${where}.${key}`;
}
