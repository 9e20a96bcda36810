// GET /api/config without secrets: walks the config beside its schema and replaces every value the schema marks
// with secret() (src/config/secret.ts) by "[redacted]". Plugin configs are walked with their plugin's schema.
import type { z } from 'zod';
import { SECRETS } from '../config/secret.ts';
import { buildConfigSchema, type Config, type PluginEntry, type PluginSchemas } from '../config/schema.ts';

export const REDACTED = '[redacted]';
/** JWK members that hold key material (RFC 7517/7518): the rest (kty, kid, n, e, x, y, crv) is public. */
const JWK_PRIVATE = ['k', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

type Def = { type: string; [k: string]: unknown };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

function redactValue(value: unknown, schema: z.ZodType, plugins: PluginSchemas, depth = 0): unknown {
  if (depth > 64) return value;
  const mark = SECRETS.get(schema);
  if (mark !== undefined) {
    if (mark.kind === 'value') return value === undefined || value === null ? value : REDACTED;
    if (mark.kind === 'url' && typeof value === 'string' && URL.canParse(value)) {
      const url = new URL(value);
      // A URL without credentials is shown as written (toString would add a `/` to an origin).
      if (url.username === '' && url.password === '') return value;
      url.username = url.username === '' ? '' : REDACTED;
      url.password = url.password === '' ? '' : REDACTED;
      return url.toString().replaceAll('%5Bredacted%5D', REDACTED);
    }
    if (mark.kind === 'jwk' && isObject(value)) {
      const out: Record<string, unknown> = { ...value };
      for (const k of JWK_PRIVATE) if (k in out) out[k] = REDACTED;
      return out;
    }
  }
  const def = defOf(schema);
  const next = (v: unknown, s: unknown) => redactValue(v, s as z.ZodType, plugins, depth + 1);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return next(value, def.innerType);
    case 'pipe':
      // Transforms keep the shape of their input in this config (units become numbers, names lower case).
      return next(next(value, def.in), def.out);
    case 'lazy':
      return next(value, (def.getter as () => z.ZodType)());
    case 'union': {
      // Each option redacts only what it marks, so applying all of them is the cautious choice.
      let out = value;
      for (const option of def.options as z.ZodType[]) out = next(out, option);
      return out;
    }
    case 'intersection':
      return next(next(value, def.left), def.right);
    case 'array':
      return Array.isArray(value) ? value.map((v) => next(v, def.element)) : value;
    case 'record':
      if (!isObject(value)) return value;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, next(v, def.valueType)]));
    case 'object': {
      if (!isObject(value)) return value;
      const shape = def.shape as Record<string, z.ZodType>;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = shape[k] === undefined ? v : next(v, shape[k]);
      return out;
    }
    default:
      return value;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function redactPlugins(entries: readonly PluginEntry[], plugins: PluginSchemas): PluginEntry[] {
  return entries.map((e) => {
    const schema = plugins.get(e.name);
    return schema === undefined ? e : { name: e.name, config: redactValue(e.config, schema, plugins) };
  });
}

/** A copy of `config` with every secret replaced by "[redacted]". */
export function redactConfig(config: Config, plugins: PluginSchemas): unknown {
  // Without plugin schemas the top-level schema sees plugin lists as opaque: they are walked one by one below.
  const base = redactValue(config, buildConfigSchema(undefined), plugins) as Record<string, unknown>;
  return {
    ...base,
    plugins: redactPlugins(config.plugins, plugins),
    routes: config.routes.map((r, i) => ({
      ...(base.routes as Record<string, unknown>[])[i],
      plugins: redactPlugins(r.plugins, plugins),
    })),
  };
}
