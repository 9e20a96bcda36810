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
    // Durations: zod sees a string or a number; editors should see a number with its unit, or 0.
    override: (ctx) => {
      const form = (z.globalRegistry.get(ctx.zodSchema) as Record<string, unknown> | undefined)?.[JSON_FORM];
      if (form === undefined) return;
      const keep = { description: ctx.jsonSchema.description, default: ctx.jsonSchema.default };
      for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Record<string, unknown>)[key];
      Object.assign(ctx.jsonSchema, form, keep.default === undefined ? { description: keep.description } : keep);
    },
  }) as Record<string, unknown>;
  return { ...json, title: 'Turnpike configuration', $id: 'urn:turnpike:config' };
}
