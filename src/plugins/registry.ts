// Every plugin Turnpike knows. Adding a plugin = one file + one line here.
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { allowPlugin } from './allow.ts';
import { basicAuthPlugin } from './basic-auth.ts';
import { cachePlugin } from './cache.ts';
import { compressPlugin } from './compress.ts';
import { concurrencyPlugin } from './concurrency.ts';
import { corsPlugin } from './cors.ts';
import { headersPlugin } from './headers.ts';
import { ipFilterPlugin } from './ip-filter.ts';
import { jsonTransformPlugin } from './json-transform.ts';
import { jwtPlugin } from './jwt.ts';
import { keyAuthPlugin } from './key-auth.ts';
import { forwardAuthPlugin } from './forward-auth.ts';
import { mirrorPlugin } from './mirror.ts';
import { oauth2IntrospectionPlugin } from './oauth2-introspection.ts';
import { rateLimitPlugin } from './rate-limit.ts';
import { requestValidationPlugin } from './request-validation.ts';
import { rewritePlugin } from './rewrite.ts';
import { securityHeadersPlugin } from './security-headers.ts';
import { soapPlugin } from './soap.ts';
import { xmlPlugin } from './xml.ts';
import type { PluginDefinition } from './types.ts';

/**
 * Test-only plugins (a plugin that throws, body stages to compose): modules named in TURNPIKE_TEST_PLUGINS
 * (comma-separated paths) that export `plugins`. Unset in production.
 */
const testPlugins: PluginDefinition<any>[] = [];
for (const path of (process.env.TURNPIKE_TEST_PLUGINS ?? '').split(',').filter((p) => p !== '')) {
  testPlugins.push(...((await import(pathToFileURL(path).href)) as { plugins: PluginDefinition<any>[] }).plugins);
}

export const PLUGINS: ReadonlyMap<string, PluginDefinition<any>> = new Map<string, PluginDefinition<any>>(
  [
    rewritePlugin,
    headersPlugin,
    xmlPlugin,
    jsonTransformPlugin,
    ipFilterPlugin,
    corsPlugin,
    keyAuthPlugin,
    basicAuthPlugin,
    jwtPlugin,
    oauth2IntrospectionPlugin,
    forwardAuthPlugin,
    allowPlugin,
    rateLimitPlugin,
    concurrencyPlugin,
    securityHeadersPlugin,
    compressPlugin,
    cachePlugin,
    soapPlugin,
    requestValidationPlugin,
    mirrorPlugin,
    ...testPlugins,
  ].map((p) => [p.name, p as PluginDefinition<any>]),
);

/** Each plugin's schema, carrying the plugin's description and phase for `turnpike schema` (it parses the same). */
export const PLUGIN_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map(
  [...PLUGINS].map(([name, p]) => [name, p.schema.meta({ description: `${p.description} (phase: ${p.phase})` })]),
);
