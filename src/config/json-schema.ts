// The JSON Schema `turnpike schema` prints, for editors (yaml-language-server, VS Code).
import { z } from 'zod';
import { JSON_FORM } from './primitives.ts';
import { buildConfigSchema, type PluginSchemas } from './schema.ts';

export function configJsonSchema(plugins: PluginSchemas): Record<string, unknown> {
  const schema = buildConfigSchema(plugins, true);
  const json = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-2020-12',
    // Durations and sizes: zod sees a string or a number; editors should see a number with its unit (or 0).
    override: (ctx) => {
      const meta = z.globalRegistry.get(ctx.zodSchema) as Record<string, unknown> | undefined;
      const json = ctx.jsonSchema as Record<string, unknown>;
      // zod drops the examples of a transforming schema in input mode; ours are written in the input form.
      if (Array.isArray(meta?.examples) && json.examples === undefined) json.examples = meta.examples;
      const form = meta?.[JSON_FORM];
      if (form === undefined) return;
      const keep = Object.fromEntries(
        ['description', 'default', 'examples'].filter((k) => json[k] !== undefined).map((k) => [k, json[k]]),
      );
      for (const key of Object.keys(json)) delete json[key];
      Object.assign(json, form, keep);
    },
  }) as Record<string, unknown>;
  deriveExample(json);
  return { ...json, title: 'Turnpike configuration', $id: 'urn:turnpike:config' };
}

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Gives every key an example (`examples`), for editors' completion. Leaves carry theirs in `.meta({ examples })`
 * beside their description; what the schema itself spells out is derived here: a boolean (the value that is
 * not the default), an enum or const (its first value), a map with properties (its required keys' examples, or
 * its first key's), a list (one item), a union (its first option that has one). Children first, so a map's
 * example is made of its keys' examples. Returns the node's example (undefined: none).
 */
export function deriveExample(node: Json): unknown {
  const props = isJson(node.properties) ? node.properties : undefined;
  const own: Record<string, unknown> = {};
  if (props !== undefined) {
    for (const [key, child] of Object.entries(props)) {
      if (!isJson(child)) continue;
      const example = deriveExample(child);
      if (example !== undefined) {
        own[key] = example;
        if (!Array.isArray(child.examples)) child.examples = [example];
      }
    }
  }
  const options = [node.anyOf, node.oneOf].flatMap((o) => (Array.isArray(o) ? o.filter(isJson) : []));
  const fromOptions = options.map(deriveExample).find((e) => e !== undefined);
  const item = isJson(node.items) ? deriveExample(node.items) : undefined;
  if (isJson(node.additionalProperties)) deriveExample(node.additionalProperties);
  if (Array.isArray(node.examples) && node.examples.length > 0) return node.examples[0];
  if ('const' in node) return node.const;
  if (Array.isArray(node.enum) && node.enum.length > 0) return node.enum[0];
  if (node.type === 'boolean') return node.default !== true;
  if (props !== undefined) {
    const required = Array.isArray(node.required) ? (node.required as string[]).filter((k) => k in own) : [];
    const keys = required.length > 0 ? required : Object.keys(own).slice(0, 1);
    return keys.length === 0 ? undefined : Object.fromEntries(keys.map((k) => [k, own[k]]));
  }
  if (item !== undefined) return [item];
  return fromOptions;
}
