// The JSON Schema `turnpike schema` prints, for editors (yaml-language-server, VS Code).
import { z } from 'zod';
import { buildConfigSchema, type PluginSchemas } from './schema.ts';

export function configJsonSchema(plugins: PluginSchemas): Record<string, unknown> {
  const schema = buildConfigSchema(plugins, true);
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { ...json, title: 'Turnpike configuration', $id: 'urn:turnpike:config' };
}
