// `validate --strict` warnings (src/config/lint.ts): each rule fires where the answer is certain, names what
// hides a route, and says nothing where the router's precedence or a predicate makes it undecidable.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lintConfig } from '../../src/config/lint.ts';
import { loadConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';

const HEAD = `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:9001" }] }
`;

/** The warnings of a config as `code path: message` lines. */
function warnings(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const { warnings } = loadConfigText(yaml, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env, lint: lintConfig });
  return warnings.map((w) => `${w.code} ${w.path}: ${w.message}`);
}

function routes(...lines: string[]): string {
  return `${HEAD}routes:\n${lines.map((l) => `  - ${l}\n`).join('')}`;
}

describe('shadowed routes and duplicate matches', () => {
  test('an earlier route with the same path and no method list hides a GET-only one, and is named', () => {
    const w = warnings(
      routes(
        '{ name: all, match: { path: /api }, upstream: app }',
        '{ name: reads, match: { path: /api, methods: [GET] }, upstream: app }',
      ),
    );
    assert.deepEqual(w, [
      'TP_CONFIG_SHADOWED_ROUTE routes[1].match: route "reads" can never match: route "all" (routes[0]) comes first with the same host and path and takes every request it would match',
    ]);
  });

  test('a route with a header predicate is hidden by an earlier one without it', () => {
    const w = warnings(
      routes(
        '{ name: all, match: { host: api.example.com, path: /v1 }, upstream: app }',
        '{ name: v2, match: { host: api.example.com, path: /v1, headers: { x-version: "2" } }, upstream: app }',
      ),
    );
    assert.equal(w.length, 1);
    assert.match(w[0]!, /^TP_CONFIG_SHADOWED_ROUTE routes\[1\]\.match: route "v2" .* route "all"/);
  });

  test('an identical match is a duplicate, whatever it holds (regex paths, headers)', () => {
    const w = warnings(
      routes(
        '{ name: a, match: { path: { regex: "^/v[0-9]+/" }, headers: { x-a: "1" } }, upstream: app }',
        '{ name: b, match: { headers: { x-a: "1" }, path: { regex: "^/v[0-9]+/" } }, upstream: app }',
        '{ name: c, match: { path: /x, methods: [post, GET] }, upstream: app }',
        '{ name: d, match: { path: { prefix: /x }, methods: [GET, POST] }, upstream: app }',
      ),
    );
    assert.deepEqual(
      w.map((l) => l.split(':')[0]),
      ['TP_CONFIG_DUPLICATE_MATCH routes[1].match', 'TP_CONFIG_DUPLICATE_MATCH routes[3].match'],
    );
    assert.match(w[0]!, /route "b" has the same match as route "a" \(routes\[0\]\)/);
  });

  test('precedence is not list order: nothing is said where the later route wins or the answer is undecidable', () => {
    const w = warnings(
      routes(
        // A catch-all first never hides a longer prefix, an exact path, a host, or a method it does not take.
        '{ name: all, match: { path: / }, upstream: app }',
        '{ name: api, match: { path: /api }, upstream: app }',
        '{ name: health, match: { path: { exact: / } }, upstream: app }',
        '{ name: host, match: { host: api.example.com, path: / }, upstream: app }',
        // The earlier route has a predicate: whether it takes every request is not known here.
        '{ name: v2, match: { path: /p, headers: { x-v: "2" } }, upstream: app }',
        '{ name: p, match: { path: /p }, upstream: app }',
        '{ name: api-post, match: { path: /orders, methods: [GET] }, upstream: app }',
        '{ name: api-all, match: { path: /orders }, upstream: app }',
        // A wildcard host does not hide an exact one (exact hosts are tried first), nor a regex anything.
        '{ name: wild, match: { host: "*.example.com", path: /w }, upstream: app }',
        '{ name: exact, match: { host: a.example.com, path: /w }, upstream: app }',
        '{ name: re, match: { path: { regex: "^/api" } }, upstream: app }',
        // Another host the earlier route does not take.
        '{ name: one, match: { host: a.example.com, path: /h }, upstream: app }',
        '{ name: two, match: { host: [a.example.com, b.example.com], path: /h }, upstream: app }',
      ),
    );
    assert.deepEqual(w, []);
  });

  test('a route allowing GET hides a later HEAD-only one; paths compare without letter case when routes do', () => {
    const w = warnings(
      `${routes(
        '{ name: get, match: { path: /Docs, methods: [GET] }, upstream: app }',
        '{ name: head, match: { path: /docs, methods: [HEAD] }, upstream: app }',
      )}limits: { caseSensitivePaths: false }\n`,
    );
    assert.equal(w.length, 1);
    assert.match(w[0]!, /route "head" can never match: route "get"/);
    const sensitive = warnings(
      routes(
        '{ name: get, match: { path: /Docs, methods: [GET] }, upstream: app }',
        '{ name: head, match: { path: /docs, methods: [HEAD] }, upstream: app }',
      ),
    );
    assert.deepEqual(sensitive, []);
  });
});

describe('unused upstreams and consumers', () => {
  test('an upstream no route or listener names', () => {
    const w = warnings(`${HEAD}  spare: { targets: [{ url: "http://127.0.0.1:9002" }] }
  pg: { targets: [{ url: "tcp://127.0.0.1:5432" }] }
routes: [{ match: { path: / }, upstream: app }]
`);
    assert.deepEqual(w, [
      'TP_CONFIG_UNUSED upstreams.spare: upstream "spare" is named by no route or listener',
      'TP_CONFIG_UNUSED upstreams.pg: upstream "pg" is named by no route or listener',
    ]);
    const l4 = warnings(`listeners:
  - { name: db, protocol: tcp, port: 5433, upstream: pg }
  - { name: tls, protocol: tcp, port: 9443, sni: [{ serverName: "*", upstream: tls }] }
upstreams:
  pg: { targets: [{ url: "tcp://127.0.0.1:5432" }] }
  tls: { targets: [{ url: "tcp://127.0.0.1:8443" }] }
`);
    assert.deepEqual(l4, []);
  });

  test('a consumer whose credentials no plugin reads', () => {
    const consumers = `consumers:
  - { name: keyed, credentials: { apiKeys: ["0123456789abcdef0123"] } }
  - { name: subject, credentials: { jwt: { subject: u-1 } } }
  - { name: nothing }
`;
    const keyAuth = `${HEAD}${consumers}routes: [{ match: { path: / }, upstream: app, plugins: [{ key-auth: {} }] }]\n`;
    assert.deepEqual(warnings(keyAuth), [
      'TP_CONFIG_UNUSED consumers[1]: consumer "subject" can never be identified: no jwt or oauth2-introspection plugin is configured',
      'TP_CONFIG_UNUSED consumers[2]: consumer "nothing" can never be identified: it has no credentials',
    ]);
    const global = `${HEAD}${consumers.split('\n').slice(0, 3).join('\n')}
plugins: [{ key-auth: {} }, { jwt: { jwksUri: "https://idp.example.com/jwks", algorithms: [RS256] } }]
routes: [{ match: { path: / }, upstream: app }]
`;
    assert.deepEqual(warnings(global), []);
  });
});

describe('passwords in URLs', () => {
  test('user:password@ written in the file is a warning; a ${VAR} password is not', () => {
    const w = warnings(
      `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  app: { targets: [{ url: "http://bob:hunter2@127.0.0.1:9001" }] }
  env: { targets: [{ url: "http://bob:\${PW}@127.0.0.1:9002" }] }
  user: { targets: [{ url: "http://bob@127.0.0.1:9003" }] }
stores: { redis: { url: "redis://:s3cret@127.0.0.1:6379" } }
routes:
  - { match: { path: /a }, upstream: app }
  - { match: { path: /b }, upstream: env }
  - { match: { path: /c }, upstream: user }
`,
      { PW: 'from-the-environment' },
    );
    assert.deepEqual(
      w.map((l) => l.split(':')[0]),
      ['TP_CONFIG_URL_CREDENTIALS upstreams.app.targets[0].url', 'TP_CONFIG_URL_CREDENTIALS stores.redis.url'],
    );
    assert.ok(
      w.every((l) => !l.includes('hunter2') && !l.includes('s3cret')),
      'a warning shows the password',
    );
  });
});
