// forward-auth's config: the line validates verbatim; a cacheKey that is not a key template, cacheTtl
// without cacheKey and a URL that is not http(s) are refused with their line and key path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfigText, type ConfigProblem } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { parseKeyTemplate } from '../../src/plugins/forward-auth-key.ts';

const config = (forwardAuth: string) => `
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  checkout: { targets: [{ url: "http://127.0.0.1:9000" }] }
routes:
  - name: checkout
    match: { path: /checkout }
    upstream: checkout
    plugins:
      - forward-auth: ${forwardAuth}
`;

function problems(text: string): ConfigProblem[] {
  try {
    loadConfigText(text, 'cfg.yaml', { ...LOAD_OPTIONS, readFiles: false });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  return [];
}

test("the issue's line validates verbatim", () => {
  assert.deepEqual(
    problems(config('{ url: "http://127.0.0.1:9200/authz", copyHeaders: [x-user-id], timeout: 1s }')),
    [],
  );
  assert.deepEqual(
    problems(config(`{ url: "http://a/authz", cacheKey: '{headers.authorization}|{method}', cacheTtl: 30s }`)),
    [],
  );
});

test('a bad cacheKey, cacheTtl without cacheKey and a non-http url are placed at their line', () => {
  const [key] = problems(config(`{ url: "http://a/authz", cacheKey: '{header.authorization}' }`));
  assert.equal(key!.line, 10);
  assert.equal(key!.path, 'routes[0].plugins[0].forward-auth.cacheKey');
  assert.match(key!.message, /expected one of \{headers\.NAME\}/);
  const [ttl] = problems(config('{ url: "http://a/authz", cacheTtl: 30s }'));
  assert.match(ttl!.path, /forward-auth\.cacheTtl$/);
  assert.match(ttl!.message, /cacheTtl needs cacheKey/);
  const [url] = problems(config('{ url: "ftp://a/authz" }'));
  assert.match(url!.path, /forward-auth\.url$/);
});

test('key templates: placeholders parsed, text without one refused', () => {
  assert.ok(Array.isArray(parseKeyTemplate('{cookie.session}:{client.ip}')));
  assert.match(String(parseKeyTemplate('static')), /every request the same decision/);
  assert.match(String(parseKeyTemplate('{headers.x')), /not closed/);
  assert.match(String(parseKeyTemplate('a}')), /closes no/);
});
