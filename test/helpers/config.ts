// The problems the config loader reports for a route's plugin list (YAML lines under `plugins:`), as "path: message".
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';

export function pluginConfigProblems(pluginLines: string): string[] {
  const text = `listeners: [{ name: web, protocol: http, port: 0 }]\nroutes:\n  - respond: { body: ok }\n    plugins:\n${pluginLines}\n`;
  try {
    parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}
