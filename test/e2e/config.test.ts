// The config contract: the example loads verbatim (YAML and JSON), and every error names the file,
// line, column, key path and what was expected, with a stable code.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  formatProblem,
  loadConfigFile,
  parseConfigText,
  type ConfigProblem,
} from '../../src/config/loader.ts';
import { parseConfig, startGateway } from '../../src/index.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { freePort } from '../helpers/ports.ts';
import { quietLog, tempDir } from '../helpers/servers.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'config');
const EXAMPLE_YAML = join(FIXTURES, 'issue-example.yaml');
const EXAMPLE_JSON = join(FIXTURES, 'issue-example.json');
const example = readFileSync(EXAMPLE_YAML, 'utf8');

/** The example with one edit; fails loudly when the text to replace is not there. */
function edit(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `fixture should contain ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

/** The problems parsing `text` reports (as file `cfg.yaml`). */
function problems(text: string, env: NodeJS.ProcessEnv = {}): readonly ConfigProblem[] {
  try {
    parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    return err.problems;
  }
  assert.fail('expected the config to be rejected');
}

function only(text: string, env?: NodeJS.ProcessEnv): ConfigProblem {
  const all = problems(text, env);
  assert.equal(all.length, 1, `expected one problem, got:\n${all.map(formatProblem).join('\n')}`);
  return all[0]!;
}

function where(p: ConfigProblem): { code: string; line: number; column: number; path: string } {
  return { code: p.code, line: p.line, column: p.column, path: p.path };
}

const MINIMAL = 'listeners:\n  - name: web\n    protocol: http\n    port: 0\n';

describe('the issue example', () => {
  test('validates verbatim through parseConfig, with sizes and durations as numbers', () => {
    const config = parseConfig(example, 'issue-example.yaml');
    assert.deepEqual(config.listeners, [
      {
        name: 'web',
        protocol: 'http',
        address: '127.0.0.1',
        port: 8080,
        trustedProxies: [],
        proxyProtocol: false,
        acceptSockets: 16,
        h2c: false,
        redirectToHttps: false,
      },
    ]);
    assert.equal(config.limits.maxHeaderSize, 16 * 1024);
    assert.equal(config.limits.maxBodySize, 10 * 1024 * 1024);
    assert.equal(config.limits.headerTimeout, 10_000);
    assert.equal(config.limits.requestTimeout, 60_000);
    assert.deepEqual(
      config.upstreams.users!.targets.map((t) => t.url),
      ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'],
    );
    assert.equal(config.upstreams.users!.timeouts.connect, 2000);
    assert.equal(config.upstreams.users!.timeouts.response, 30_000);
    assert.deepEqual(
      config.routes.map((r) => r.name),
      ['users', 'orders-read', 'health', 'old-docs'],
    );
    const [users, orders, health, docs] = config.routes;
    assert.deepEqual(users!.match.host, 'api.example.com');
    assert.equal(orders!.upstream, 'orders');
    assert.deepEqual(orders!.match.methods, ['GET']);
    assert.deepEqual(
      orders!.plugins.map((p) => p.name),
      ['rewrite', 'headers'],
    );
    assert.deepEqual(orders!.plugins[0]!.config, { stripPrefix: '/orders', addPrefix: '/v2/orders' });
    assert.deepEqual(health!.match.path, { exact: '/healthz' });
    assert.equal(health!.respond!.status, 200);
    assert.equal(health!.respond!.body, 'ok');
    assert.deepEqual(
      { to: docs!.redirect!.to, status: docs!.redirect!.status },
      { to: 'https://docs.example.com', status: 301 },
    );
    assert.deepEqual(config.plugins, []);
  });

  test('loads from a YAML file and the same config as a JSON file, to the same result', () => {
    const fromYaml = loadConfigFile(EXAMPLE_YAML, { plugins: PLUGIN_SCHEMAS });
    const fromJson = loadConfigFile(EXAMPLE_JSON, { plugins: PLUGIN_SCHEMAS });
    assert.equal(fromYaml.file, EXAMPLE_YAML);
    assert.deepEqual(fromJson.config, fromYaml.config);
    assert.deepEqual(fromYaml.config, parseConfig(example));
  });

  test('routes may override maxBodySize and requestTimeout', () => {
    const text = edit(
      example,
      '    upstream: users\n',
      '    upstream: users\n    limits: { maxBodySize: 1kb, requestTimeout: 5s }\n',
    );
    const route = parseConfig(text).routes[0]!;
    assert.deepEqual(route.limits, { maxBodySize: 1024, requestTimeout: 5000 });
  });

  test('a JSON config error is located in the JSON file', () => {
    const json = readFileSync(EXAMPLE_JSON, 'utf8');
    const p = only(edit(json, '"stripPrefix"', '"stripPrefx"'));
    const lines = json.split('\n');
    const line = lines.findIndex((l) => l.includes('"stripPrefix"')) + 1;
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_UNKNOWN_KEY',
      line,
      column: lines[line - 1]!.indexOf('"stripPrefix"') + 1,
      path: 'routes[1].plugins[0].rewrite.stripPrefx',
    });
  });
});

describe('unknown keys', () => {
  test('an unknown key in a plugin names its path, line and column, and the allowed keys', () => {
    const p = only(edit(example, 'stripPrefix: /orders', 'stripPrefx: /orders'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_UNKNOWN_KEY',
      line: 29,
      column: 20,
      path: 'routes[1].plugins[0].rewrite.stripPrefx',
    });
    assert.match(p.message, /unknown key "stripPrefx"/);
    assert.match(p.message, /did you mean "stripPrefix"/);
    assert.match(p.message, /stripPrefix, addPrefix, regex/);
    assert.equal(
      formatProblem(p),
      `cfg.yaml:29:20 routes[1].plugins[0].rewrite.stripPrefx: ${p.message} [TP_CONFIG_UNKNOWN_KEY]`,
    );
  });

  test('an unknown top-level key is an error at that key', () => {
    const p = only(`${example}extra: true\n`);
    assert.deepEqual(where(p), { code: 'TP_CONFIG_UNKNOWN_KEY', line: 40, column: 1, path: 'extra' });
    assert.match(p.message, /listeners, limits, upstreams, routes, plugins/);
  });

  test('each unknown key in one map is its own problem', () => {
    const all = problems(
      edit(example, '    trustedProxies: []', '    trustedProxies: []\n    tls: true\n    backlog: 5'),
    );
    assert.deepEqual(all.map(where), [
      { code: 'TP_CONFIG_UNKNOWN_KEY', line: 7, column: 5, path: 'listeners[0].tls' },
      { code: 'TP_CONFIG_UNKNOWN_KEY', line: 8, column: 5, path: 'listeners[0].backlog' },
    ]);
  });

  test('header limits on a route are an error that says where they belong', () => {
    const p = only(edit(example, '    upstream: users\n', '    upstream: users\n    limits: { maxHeaderSize: 8kb }\n'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_UNKNOWN_KEY',
      line: 25,
      column: 15,
      path: 'routes[0].limits.maxHeaderSize',
    });
    assert.match(p.message, /maxBodySize, requestTimeout/);
    assert.match(p.message, /per listener/);
  });

  test('a typo in a key a rule needs reports the typo, not the rule as well', () => {
    const p = only(
      edit(example, '- rewrite: { stripPrefix: /orders, addPrefix: /v2/orders }', '- rewrite: { stripPrefx: /orders }'),
    );
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_UNKNOWN_KEY',
      line: 29,
      column: 20,
      path: 'routes[1].plugins[0].rewrite.stripPrefx',
    });
    const route = only(edit(example, '    upstream: users\n', '    upstreem: users\n'));
    assert.deepEqual(where(route), { code: 'TP_CONFIG_UNKNOWN_KEY', line: 24, column: 5, path: 'routes[0].upstreem' });
    assert.match(route.message, /did you mean "upstream"\?/);
  });

  test('header limits per listener are accepted', () => {
    const config = parseConfig(`${MINIMAL}    limits: { maxHeaderSize: 8kb, headerTimeout: 5s }\n`);
    const listener = config.listeners[0]!;
    assert.ok(listener.protocol === 'http');
    assert.deepEqual(listener.limits, { maxHeaderSize: 8192, headerTimeout: 5000 });
  });
});

describe('values', () => {
  test('a bad duration names the key and the expected form', () => {
    const p = only(edit(example, 'headerTimeout: 10s', 'headerTimeout: 10 seconds'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 10, column: 18, path: 'limits.headerTimeout' });
    assert.match(p.message, /expected a duration such as 250ms, 5s, 1m, 1h, 1d or 1y, got "10 seconds"/);
  });

  test('a bad size names the key and the expected form', () => {
    const p = only(edit(example, 'maxBodySize: 10mb', 'maxBodySize: ten megs'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 9, column: 16, path: 'limits.maxBodySize' });
    assert.match(p.message, /expected a size such as 512b, 16kb, 10mb or 2gb, got "ten megs"/);
  });

  test('a duration of the wrong type still says what a duration looks like', () => {
    const p = only(edit(example, 'connect: 2s', 'connect: true'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_INVALID',
      line: 17,
      column: 26,
      path: 'upstreams.users.timeouts.connect',
    });
    assert.match(p.message, /expected a duration .*, got true/);
  });

  test('a value of the wrong type says what was expected and what was found', () => {
    const p = only(edit(example, 'port: 8080', 'port: "eighty"'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 5, column: 11, path: 'listeners[0].port' });
    assert.equal(p.message, 'expected a number, got the string "eighty"');
  });

  test('a quoted environment reference gives a port inside a flow map', () => {
    const text = 'listeners: [{ name: web, protocol: http, port: "${PORT}" }]\n';
    const config = parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: { PORT: '8080' } });
    assert.equal(config.listeners[0]!.port, 8080);
  });

  test('out-of-range numbers and empty lists say the bound', () => {
    const port = only(edit(example, 'port: 8080', 'port: 70000'));
    assert.deepEqual(where(port), { code: 'TP_CONFIG_INVALID', line: 5, column: 11, path: 'listeners[0].port' });
    assert.equal(port.message, 'expected at most 65535, got the number 70000');
    const targets = only(edit(example, '    targets:\n      - url: http://127.0.0.1:9003\n', '    targets: []\n'));
    assert.deepEqual(where(targets), {
      code: 'TP_CONFIG_INVALID',
      line: 19,
      column: 14,
      path: 'upstreams.orders.targets',
    });
    assert.equal(targets.message, 'expected at least 1 item, got an empty list');
  });

  test('a path in none of its forms lists the forms', () => {
    const p = only(edit(example, 'path: { exact: /healthz }', 'path: { exakt: /healthz }'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 34, column: 20, path: 'routes[2].match.path' });
    assert.match(p.message, /\{ exact: \/healthz \}, \{ prefix: \/api \} or \{ regex:/);
    assert.match(p.message, /got a map with key "exakt"/);
  });

  test('a path form with a bad value says what is wrong with it', () => {
    const p = only(edit(example, 'path: { exact: /healthz }', 'path: { exact: healthz }'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 34, column: 29, path: 'routes[2].match.path.exact' });
    assert.match(p.message, /must start with \//);
  });

  test('a missing required key names the key and the map that lacks it', () => {
    const p = only(edit(example, '    protocol: http\n', ''));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 2, column: 5, path: 'listeners[0].protocol' });
    assert.equal(p.message, 'missing required key "protocol" (expected "http", "https", "tcp" or "udp")');
  });

  test('an empty file lacks listeners', () => {
    const p = only('');
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 1, column: 1, path: 'listeners' });
    assert.match(p.message, /missing required key "listeners" \(expected a list\)/);
  });
});

describe('durations and shares: one type each, everywhere', () => {
  const upstream = (body: string) =>
    `${MINIMAL}upstreams:\n  app:\n    targets: [{ url: "http://127.0.0.1:9001" }]\n${body}\nroutes: [{ match: { path: / }, upstream: app }]\n`;
  const https = (hsts: string) =>
    `listeners:\n  - { name: s, protocol: https, port: 0, tls: { certificates: [{ cert: c.pem, key: k.pem }] }, hsts: ${hsts} }\n`;

  test('a bare number where a duration is expected is refused with the fix (write 30s or 30ms); a bare 0 is accepted', () => {
    const p = only(upstream('    timeouts: { connect: 30 }'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_INVALID',
      line: 8,
      column: 26,
      path: 'upstreams.app.timeouts.connect',
    });
    assert.match(p.message, /a bare number is not a duration .*: write 30s or 30ms/);
    const quoted = only(upstream('    timeouts: { connect: "30" }'));
    assert.match(quoted.message, /write 30s or 30ms/);
    const zero = parseConfig(upstream('    timeouts: { connect: 0, response: "0" }'));
    assert.equal(zero.upstreams.app!.timeouts.connect, 0);
    assert.equal(zero.upstreams.app!.timeouts.response, 0);
  });

  test('a period the runtime waits on or divides by (ejectFor, circuitBreaker.window, health interval and timeout) must be above 0', () => {
    const all = problems(
      upstream(`    healthCheck: { active: { interval: 0, timeout: 0s }, passive: { ejectFor: 0 } }
    circuitBreaker: { window: 0ms }`),
    );
    assert.deepEqual(
      all.map((p) => p.path),
      [
        'upstreams.app.healthCheck.active.interval',
        'upstreams.app.healthCheck.active.timeout',
        'upstreams.app.healthCheck.passive.ejectFor',
        'upstreams.app.circuitBreaker.window',
      ],
    );
    for (const p of all) assert.equal(p.message, 'expected a duration above 0, such as 10s');
  });

  test('plugin durations refuse bare numbers too (cors maxAge, jwt clockSkew, rate-limit per, security-headers hsts)', () => {
    const route = (plugin: string) =>
      `${MINIMAL}routes:\n  - match: { path: / }\n    respond: { body: x }\n    plugins:\n      - ${plugin}\n`;
    const cases: [string, string][] = [
      ['cors: { origins: ["https://a.example"], maxAge: 600 }', 'routes[0].plugins[0].cors.maxAge'],
      [
        'jwt: { jwksUri: "https://idp.example/jwks", algorithms: [RS256], clockSkew: 30 }',
        'routes[0].plugins[0].jwt.clockSkew',
      ],
      ['rate-limit: { limits: [{ requests: 10, per: 60 }] }', 'routes[0].plugins[0].rate-limit.limits[0].per'],
      ['security-headers: { hsts: { maxAge: 31536000 } }', 'routes[0].plugins[0].security-headers.hsts.maxAge'],
    ];
    for (const [plugin, path] of cases) {
      const p = only(route(plugin));
      assert.equal(p.path, path);
      assert.match(p.message, /a bare number is not a duration .*: write \d+s or \d+ms/);
    }
  });

  test('hsts.maxAge on a listener is the same duration: banana and a bare number are refused, 1y is 365 days', () => {
    const banana = only(https('{ maxAge: banana }'));
    assert.deepEqual(where(banana), {
      code: 'TP_CONFIG_INVALID',
      line: 2,
      column: 112,
      path: 'listeners[0].hsts.maxAge',
    });
    assert.match(banana.message, /expected a duration such as .*1y, got "banana"/);
    assert.match(only(https('{ maxAge: 31536000 }')).message, /write 31536000s or 31536000ms/);
    const listener = parseConfig(https('{ maxAge: 1y }')).listeners[0]!;
    assert.ok(listener.protocol === 'https');
    assert.equal(listener.hsts!.maxAge, 365 * 86_400_000);
  });

  test('shares take 20% or 0.2 (retry budget, maxEjectedPercent, failureRatio); a bare 20 is refused with the fix', () => {
    const config = parseConfig(
      upstream(`    retries: { budget: 0.2 }
    healthCheck: { passive: { maxEjectedPercent: 34% } }
    circuitBreaker: { failureRatio: 50% }`),
    );
    const app = config.upstreams.app!;
    assert.equal(app.retries!.budget, 0.2);
    assert.equal(app.healthCheck.passive!.maxEjectedPercent, 34, 'the outlier detector counts in percent');
    assert.equal(app.circuitBreaker!.failureRatio, 0.5);
    assert.equal(parseConfig(upstream('    retries: { budget: 20% }')).upstreams.app!.retries!.budget, 0.2);
    assert.equal(
      parseConfig(upstream('    healthCheck: { passive: { maxEjectedPercent: 0.5 } }')).upstreams.app!.healthCheck
        .passive!.maxEjectedPercent,
      50,
    );
    const all = problems(
      upstream(`    retries: { budget: 20 }
    healthCheck: { passive: { maxEjectedPercent: 50 } }
    circuitBreaker: { failureRatio: 150% }`),
    );
    assert.deepEqual(
      all.map((p) => p.path),
      [
        'upstreams.app.retries.budget',
        'upstreams.app.healthCheck.passive.maxEjectedPercent',
        'upstreams.app.circuitBreaker.failureRatio',
      ],
    );
    assert.match(all[0]!.message, /expected a share such as 20% or 0\.2 .*: write 20% or 0\.2/);
    assert.match(all[1]!.message, /write 50% or 0\.5/);
  });
});

describe('secrets', () => {
  test('values of secrets are never echoed in a message (sticky secret, API key, client secret)', () => {
    const all = problems(`${MINIMAL}upstreams:
  a: { targets: [{ url: "http://127.0.0.1:9001" }], sticky: { cookie: c, secret: hunter2 } }
consumers:
  - { name: bob, credentials: { apiKeys: [tooshortkey] } }
routes:
  - match: { path: / }
    upstream: a
    plugins:
      - oauth2-introspection: { url: "https://idp.example/introspect", clientId: a, clientSecret: 123456789 }
`);
    assert.deepEqual(
      all.map((p) => p.path),
      [
        'upstreams.a.sticky.secret',
        'consumers[0].credentials.apiKeys[0]',
        'routes[0].plugins[0].oauth2-introspection.clientSecret',
      ],
    );
    const text = all.map(formatProblem).join('\n');
    for (const secret of ['hunter2', 'tooshortkey', '123456789']) assert.ok(!text.includes(secret), text);
    assert.match(
      all[0]!.message,
      /expected at least 16 characters, got a string of 7 characters \(not shown: a secret\)/,
    );
  });
});

describe('target URLs', () => {
  const upstream = (urls: string) =>
    `${MINIMAL}upstreams:\n  app:\n    targets: [${urls}]\nroutes: [{ match: { path: / }, upstream: app }]\n`;

  test('a URL new URL() cannot parse names its key path, and the other problems are still listed', () => {
    const all = problems(upstream('{ url: 127.0.0.1:9001 }, { url: "https://h:99999" }') + 'colour: blue\n');
    assert.deepEqual(all.map(where), [
      { code: 'TP_CONFIG_INVALID', line: 7, column: 22, path: 'upstreams.app.targets[0].url' },
      { code: 'TP_CONFIG_INVALID', line: 7, column: 47, path: 'upstreams.app.targets[1].url' },
      { code: 'TP_CONFIG_UNKNOWN_KEY', line: 9, column: 1, path: 'colour' },
    ]);
    assert.match(all[0]!.message, /no scheme: write http:\/\/127\.0\.0\.1:9001/);
    assert.match(all[1]!.message, /port 99999 is out of range/);
  });
});

describe('plugins', () => {
  test('an unknown plugin name is TP_CONFIG_UNKNOWN_PLUGIN and lists the known ones', () => {
    const p = only(edit(example, '- rewrite:', '- rewrites:'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_UNKNOWN_PLUGIN',
      line: 29,
      column: 9,
      path: 'routes[1].plugins[0].rewrites',
    });
    assert.match(p.message, /unknown plugin "rewrites"; did you mean "rewrite"\?/);
    assert.match(p.message, /\(known plugins: allow, .*headers, .*rewrite/);
  });

  test('a plugin config that fails its own rule is reported at the plugin', () => {
    const p = only(edit(example, '- rewrite: { stripPrefix: /orders, addPrefix: /v2/orders }', '- rewrite: {}'));
    assert.deepEqual(where(p), {
      code: 'TP_CONFIG_INVALID',
      line: 29,
      column: 18,
      path: 'routes[1].plugins[0].rewrite',
    });
    assert.match(p.message, /at least one of stripPrefix, addPrefix or regex/);
  });
});

describe('routes and cross-references', () => {
  test('a route naming a missing upstream names both the route and the upstream', () => {
    const p = only(edit(example, 'upstream: orders', 'upstream: order'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_BAD_REFERENCE', line: 27, column: 15, path: 'routes[1].upstream' });
    assert.match(p.message, /route "orders-read" names upstream "order"/);
    assert.match(p.message, /defined: users, orders/);
  });

  test('a route with both upstream and respond is an error at the second one', () => {
    const p = only(edit(example, '    upstream: users\n', '    upstream: users\n    respond: { status: 204 }\n'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 25, column: 5, path: 'routes[0].respond' });
    assert.match(p.message, /only one of upstream, respond, redirect\b.*, but this one has upstream and respond/);
  });

  test('a route with no upstream, respond or redirect is an error', () => {
    const p = only(edit(example, '    upstream: users\n', ''));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 22, column: 5, path: 'routes[0]' });
    assert.match(p.message, /needs one of upstream, respond, redirect\b/);
  });

  test('duplicate route names are TP_CONFIG_DUPLICATE at the second one', () => {
    const p = only(edit(example, 'name: health', 'name: users'));
    assert.deepEqual(where(p), { code: 'TP_CONFIG_DUPLICATE', line: 33, column: 11, path: 'routes[2].name' });
    assert.match(p.message, /route name "users" is already used by routes\[0\]/);
  });

  test('every problem is listed in one run, in file order', () => {
    let text = edit(example, 'stripPrefix: /orders', 'stripPrefx: /orders');
    text = edit(text, 'headerTimeout: 10s', 'headerTimeout: 10 seconds');
    text = edit(text, 'upstream: orders', 'upstream: order');
    assert.deepEqual(
      problems(text).map((p) => [p.line, p.code]),
      [
        [10, 'TP_CONFIG_INVALID'],
        [27, 'TP_CONFIG_BAD_REFERENCE'],
        [29, 'TP_CONFIG_UNKNOWN_KEY'],
      ],
    );
  });

  test('a bad reference stops startGateway before any listener binds', async () => {
    const port = await freePort();
    const file = join(tempDir(), 'bad-ref.yaml');
    writeFileSync(
      file,
      `listeners:\n  - { name: web, protocol: http, address: 127.0.0.1, port: ${port} }\nroutes:\n  - upstream: ghost\n`,
    );
    await assert.rejects(startGateway({ configFile: file, log: quietLog }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(where(err.problems[0]!), {
        code: 'TP_CONFIG_BAD_REFERENCE',
        line: 4,
        column: 15,
        path: 'routes[0].upstream',
      });
      return true;
    });
    assert.equal(await freePort(port), port, 'the listener port must still be free');
  });
});

describe('environment variables', () => {
  test('${VAR} unquoted takes the type of its value, ${VAR:-default} falls back, $${ is a literal ${', () => {
    const text = [
      'listeners:',
      '  - name: ${NAME:-web}',
      '    protocol: http',
      '    address: "${ADDR:-127.0.0.1}"',
      '    port: ${PORT}',
      'routes:',
      '  - respond:',
      '      body: "$${HOME} is ${WHO}, ${EMPTY:-empty}"',
      '',
    ].join('\n');
    const config = parseConfigText(text, 'cfg.yaml', {
      plugins: PLUGIN_SCHEMAS,
      env: { PORT: '8181', WHO: 'me', EMPTY: '' },
    });
    assert.equal(config.listeners[0]!.port, 8181);
    assert.equal(config.listeners[0]!.name, 'web');
    assert.equal(config.listeners[0]!.address, '127.0.0.1');
    assert.equal(config.routes[0]!.respond!.body, '${HOME} is me, empty');
  });

  test('a quoted ${VAR} stays a string, an unquoted one takes the type of its value', () => {
    const quoted = parseConfigText(MINIMAL.replace('name: web', 'name: "${N}"'), 'cfg.yaml', {
      plugins: PLUGIN_SCHEMAS,
      env: { N: '123' },
    });
    assert.equal(quoted.listeners[0]!.name, '123');
    const p = only(MINIMAL.replace('name: web', 'name: ${N}'), { N: '123' });
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 2, column: 11, path: 'listeners[0].name' });
  });

  test('an unset variable without a default is TP_CONFIG_ENV_UNSET naming it, at its line and column', () => {
    const text =
      MINIMAL.replace('port: 0', 'port: ${TURNPIKE_TEST_UNSET_PORT}') +
      'upstreams:\n  a:\n    targets:\n      - url: "http://${HOST_A}:80"\n';
    const all = problems(text, {});
    assert.deepEqual(all.map(where), [
      { code: 'TP_CONFIG_ENV_UNSET', line: 4, column: 11, path: 'listeners[0].port' },
      { code: 'TP_CONFIG_ENV_UNSET', line: 8, column: 22, path: 'upstreams.a.targets[0].url' },
    ]);
    assert.match(all[0]!.message, /TURNPIKE_TEST_UNSET_PORT is not set/);
    assert.match(all[1]!.message, /HOST_A is not set/);
  });
});

describe('files and syntax', () => {
  test('a YAML syntax error is TP_CONFIG_SYNTAX with its line', () => {
    const unclosed = only('listeners:\n  - name: web\n    protocol: [http\nroutes: []\n');
    assert.deepEqual(where(unclosed), { code: 'TP_CONFIG_SYNTAX', line: 4, column: 1, path: '' });
    assert.match(unclosed.message, /end with a \]/);
    const tab = only('listeners:\n\t- name: web\n');
    assert.deepEqual(where(tab), { code: 'TP_CONFIG_SYNTAX', line: 2, column: 1, path: '' });
    assert.match(formatProblem(tab), /^cfg\.yaml:2:1 Tabs are not allowed as indentation \[TP_CONFIG_SYNTAX\]$/);
  });

  test('a key given twice is a syntax error at the second one', () => {
    const p = only(`${MINIMAL}    port: 1\n`);
    assert.deepEqual(where(p), { code: 'TP_CONFIG_SYNTAX', line: 5, column: 5, path: 'listeners[0].port' });
    assert.equal(p.message, 'key "port" is given twice in the same map');
  });

  test('a missing file is TP_CONFIG_NOT_FOUND naming the file', () => {
    const file = join(tempDir(), 'nope.yaml');
    assert.throws(
      () => loadConfigFile(file, { plugins: PLUGIN_SCHEMAS }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'TP_CONFIG_NOT_FOUND');
        assert.equal(err.problems[0]!.file, file);
        assert.equal(
          formatProblem(err.problems[0]!),
          `${file}: cannot read config: no such file [TP_CONFIG_NOT_FOUND]`,
        );
        return true;
      },
    );
  });

  test('problems from a file carry the file name as given', () => {
    const file = join(tempDir(), 'typo.yaml');
    writeFileSync(file, `${MINIMAL}    bogus: 1\n`);
    assert.throws(
      () => loadConfigFile(file, { plugins: PLUGIN_SCHEMAS }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          new RegExp(
            `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:5 listeners\\[0\\]\\.bogus: unknown key "bogus"`,
          ),
        );
        return true;
      },
    );
  });
});

describe('route paths the router cannot compile', () => {
  test('a parameter that is not a whole segment is reported at the path', () => {
    const p = only(`${MINIMAL}routes:\n  - { match: { path: "/files/:name.json" }, respond: { body: x } }\n`);
    assert.deepEqual(where(p), { code: 'TP_CONFIG_INVALID', line: 6, column: 22, path: 'routes[0].match.path' });
    assert.match(p.message, /whole segment/);
  });

  test('a wildcard in an exact path is reported with the regex form as the way out', () => {
    const p = only(`${MINIMAL}routes:\n  - { match: { path: { exact: "/a/*" } }, respond: { body: x } }\n`);
    assert.equal(p.path, 'routes[0].match.path.exact');
    assert.match(p.message, /regex/);
  });
});

describe('upstream balancing, health and resilience keys', () => {
  const upstream = (body: string) =>
    `${MINIMAL}upstreams:\n  app:\n${body}\nroutes: [{ match: { path: / }, upstream: app }]\n`;

  test('every key loads, with shares, ranges and hash sources parsed', () => {
    const config = parseConfigText(
      upstream(`    balance: consistent-hash
    hashOn: header:X-User-Id
    targets: [{ url: "http://127.0.0.1:9001", weight: 3 }, { url: "http://127.0.0.1:9002", backup: true }]
    sticky: { cookie: tp, ttl: 1h, secret: "0123456789abcdef" }
    healthCheck:
      active: { type: http, path: /healthz, expectStatus: 200-299, interval: 2s, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 3 }
      passive: { consecutiveFailures: 5, ejectFor: 30s, maxEjectedPercent: 50% }
      slowStart: 30s
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504], backoff: 25ms, budget: 20% }
    circuitBreaker: { failureRatio: 0.5, minimumRequests: 20, window: 10s, openFor: 30s, halfOpenRequests: 3 }
    timeouts: { connect: 2s, response: 30s, idle: 60s, total: 2m }`),
      'cfg.yaml',
      { plugins: PLUGIN_SCHEMAS },
    );
    const app = config.upstreams.app!;
    assert.deepEqual(app.hashOn, { kind: 'header', name: 'x-user-id' });
    assert.deepEqual(app.healthCheck.active!.expectStatus, [200, 299]);
    assert.equal(app.retries!.budget, 0.2);
    assert.deepEqual([...app.retries!.on], ['connect-failure', 'reset', '502', '503', '504']);
    assert.equal(app.retries!.bufferBody, 64 * 1024);
    assert.equal(app.timeouts.total, 120_000);
    assert.equal(app.targets[1]!.backup, true);
  });

  test('hashOn with another algorithm is an error at hashOn', () => {
    const p = only(upstream(`    hashOn: ip\n    targets: [{ url: "http://127.0.0.1:9001" }]`));
    assert.equal(p.path, 'upstreams.app.hashOn');
    assert.match(p.message, /hashOn applies to balance: consistent-hash, not round-robin/);
  });

  test('a hash source that is not one of the forms lists them', () => {
    const p = only(
      upstream(`    balance: consistent-hash\n    hashOn: body:user\n    targets: [{ url: "http://127.0.0.1:9001" }]`),
    );
    assert.equal(p.path, 'upstreams.app.hashOn');
    assert.match(p.message, /expected header:NAME, cookie:NAME, query:NAME, ip or path, got "body:user"/);
  });

  test('a bad status range and an upstream of only backups are reported where they are', () => {
    const range = only(
      upstream(
        `    targets: [{ url: "http://127.0.0.1:9001" }]\n    healthCheck: { active: { expectStatus: 399-200 } }`,
      ),
    );
    assert.equal(range.path, 'upstreams.app.healthCheck.active.expectStatus');
    assert.match(range.message, /a range such as 200-399, got "399-200"/);
    const backups = only(upstream(`    targets: [{ url: "http://127.0.0.1:9001", backup: true }]`));
    assert.equal(backups.path, 'upstreams.app.targets');
    assert.match(backups.message, /at least one target that is not a backup/);
  });

  test('an unknown balance algorithm lists the known ones', () => {
    const p = only(upstream(`    balance: fastest\n    targets: [{ url: "http://127.0.0.1:9001" }]`));
    assert.equal(p.path, 'upstreams.app.balance');
    assert.match(p.message, /least-request/);
  });
});

describe('listeners by protocol', () => {
  test("the TLS issue's example validates verbatim: https with SNI certificates and client auth, tcp, sni passthrough, udp", () => {
    const config = parseConfig(readFileSync(join(FIXTURES, 'tls-example.yaml'), 'utf8'), 'tls-example.yaml');
    assert.deepEqual(
      config.listeners.map((l) => l.protocol),
      ['https', 'tcp', 'tcp', 'udp'],
    );
    const https = config.listeners[0]!;
    assert.ok(https.protocol === 'https');
    assert.equal(https.tls?.certificates.length, 2);
    assert.equal(https.tls?.clientAuth?.mode, 'optional');
    assert.equal(config.upstreams.greeter!.http2, true);
  });

  test('a tcp listener naming an http upstream, and a route naming a tcp upstream, are bad references', () => {
    const all = problems(`${MINIMAL}  - { name: t, protocol: tcp, port: 0, upstream: web }
upstreams:
  web: { targets: [{ url: "http://127.0.0.1:9001" }] }
  pg: { targets: [{ url: "tcp://127.0.0.1:5432" }] }
routes: [{ match: { path: / }, upstream: pg }]
`);
    assert.deepEqual(
      new Set(all.map((p) => `${p.code} ${p.path}`)),
      new Set(['TP_CONFIG_BAD_REFERENCE routes[0].upstream', 'TP_CONFIG_BAD_REFERENCE listeners[1].upstream']),
    );
    assert.match(
      all.find((p) => p.path === 'listeners[1].upstream')!.message,
      /needs an upstream with tcp:\/\/ targets, but "web" has http:\/\/ targets/,
    );
  });

  test('a tcp listener needs exactly one of upstream and sni; protocol must be one of the four', () => {
    const neither = only(`${MINIMAL}  - { name: t, protocol: tcp, port: 0 }\n`);
    assert.match(neither.message, /either upstream or sni/);
    const ftp = only(MINIMAL.replace('protocol: http', 'protocol: ftp'));
    assert.equal(ftp.message, 'expected "http", "https", "tcp" or "udp", got the string "ftp"');
  });
});
