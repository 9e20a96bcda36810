// Every plugin Turnpike knows. Adding a plugin = one file + one line here.
import type { z } from 'zod';
import { headersPlugin } from './headers.ts';
import { rewritePlugin } from './rewrite.ts';
import type { PluginDefinition } from './types.ts';

export const PLUGINS: ReadonlyMap<string, PluginDefinition<any>> = new Map<string, PluginDefinition<any>>(
  [rewritePlugin, headersPlugin].map((p) => [p.name, p as PluginDefinition<any>]),
);

export const PLUGIN_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map([...PLUGINS].map(([name, p]) => [name, p.schema]));
