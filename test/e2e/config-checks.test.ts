// `turnpike validate` checks what `start` checks: files exist and parse, keys match certificates, secrets are
// long enough, a store a plugin needs is configured, the access log can be opened, URLs parse. Both list every
// problem at once as `file:line:col key.path: message [CODE]`, and `start` refuses with the same list.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, type ConfigProblem } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { CLI } from '../helpers/process.ts';
import { quietLog, startGatewayYaml } from '../helpers/servers.ts';
import { ConfigReloader } from '../../src/runtime/lifecycle.ts';

const { pki, serverCa, clientCa } = makeTestPki();
after(() => pki.remove());
const site = pki.server(serverCa, { names: ['site.example.com'], file: 'site' });
pki.server(serverCa, { names: ['other.example.com'], file: 'other' });
writeFileSync(join(pki.dir, 'hs.secret'), 'a-shared-secret-of-at-least-32-bytes!!\n');
writeFileSync(join(pki.dir, 'not-pem.txt'), 'hello\n');

let files = 0;
/** Writes `yaml` as a config file in the certificates' folder (relative paths start there). */
function configFile(yaml: string): string {
  const file = join(pki.dir, `turnpike-${++files}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `line:col` of the first `value` on the first line containing `marker`. */
function at(text: string, marker: string, value: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, marker);
  const col = lines[i]!.indexOf(value, lines[i]!.indexOf(marker));
  assert.ok(col >= 0, value);
  return `${i + 1}:${col + 1}`;
}

/** The problems loading `file` the way validate and start do (none: []). */
function problems(file: string): readonly ConfigProblem[] {
  try {
    loadConfigFile(file, LOAD_OPTIONS);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

const paths = (all: readonly ConfigProblem[]) => all.map((p) => `${p.path} [${p.code}]`);

const HTTPS = (tls: string) => `listeners:
  - name: web
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: ${tls}
accessLog: { enabled: false }
`;

describe('validate and start make the same checks, and list every problem', () => {
  const text = `listeners:
  - name: web
    protocol: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates:
        - { cert: missing.pem, key: site-key.pem }
        - { cert: site.pem, key: other-key.pem }
    hsts: { maxAge: banana }
upstreams:
  app:
    targets: [{ url: 127.0.0.1:9001 }, { url: "https://h:99999" }]
    tls: { ca: no-ca.pem }
routes:
  - match: { path: / }
    upstream: app
    plugins:
      - jwt: { keys: [{ secret: too-short-secret }, "file:no-such-key.pem"], algorithms: [HS256, ES256] }
      - rate-limit: { limits: [{ requests: 10, per: 1m }], store: redis }
      - cache: { defaultTtl: 30 }
accessLog: { output: ${join(pki.dir, 'site.pem', 'access.log')} }
`;
  const file = configFile(text);
  const expected = [
    [
      at(text, 'cert: missing.pem', 'missing.pem'),
      'listeners[0].tls.certificates[0].cert',
      'TP_TLS_CONFIG',
      /missing\.pem .*: file not found/,
    ],
    [
      at(text, 'key: other-key.pem', 'other-key.pem'),
      'listeners[0].tls.certificates[1].key',
      'TP_TLS_CONFIG',
      /other-key\.pem .*the key does not match the certificate site\.pem/,
    ],
    [
      at(text, 'maxAge: banana', 'banana'),
      'listeners[0].hsts.maxAge',
      'TP_CONFIG_INVALID',
      /expected a duration .* got "banana"/,
    ],
    [
      at(text, 'url: 127.0.0.1:9001', '127.0.0.1:9001'),
      'upstreams.app.targets[0].url',
      'TP_CONFIG_INVALID',
      /no scheme: write http:\/\/127\.0\.0\.1:9001/,
    ],
    [
      at(text, '{ url: "https://h:99999"', '"https'),
      'upstreams.app.targets[1].url',
      'TP_CONFIG_INVALID',
      /port 99999 is out of range/,
    ],
    [at(text, 'ca: no-ca.pem', 'no-ca.pem'), 'upstreams.app.tls.ca', 'TP_TLS_CONFIG', /no-ca\.pem .*: file not found/],
    [
      at(text, 'secret: too-short-secret', 'too-short-secret'),
      'routes[0].plugins[0].jwt.keys[0].secret',
      'TP_CONFIG_INVALID',
      /at least 32 bytes .*; this one has 16$/,
    ],
    [
      at(text, '"file:no-such-key.pem"', '"file:'),
      'routes[0].plugins[0].jwt.keys[1]',
      'TP_CONFIG_FILE',
      /cannot read no-such-key\.pem .*: no such file/,
    ],
    [
      at(text, 'store: redis', 'redis }'),
      'routes[0].plugins[1].rate-limit.store',
      'TP_CONFIG_BAD_REFERENCE',
      /needs the top-level stores\.redis/,
    ],
    [
      at(text, 'defaultTtl: 30', '30'),
      'routes[0].plugins[2].cache.defaultTtl',
      'TP_CONFIG_INVALID',
      /write 30s or 30ms/,
    ],
    [
      at(text, 'accessLog:', '/'),
      'accessLog.output',
      'TP_CONFIG_FILE',
      /cannot be created: .*site\.pem is a file, not a folder/,
    ],
  ] as const;

  function assertEveryProblem(stderr: string): void {
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, expected.length, stderr);
    expected.forEach(([where, path, code, message], i) => {
      const line = lines[i]!;
      const prefix = `error: ${file}:${where} ${path}: `;
      assert.ok(line.startsWith(prefix), `line ${i + 1}:\n  ${line}\nshould start with\n  ${prefix}`);
      assert.ok(line.endsWith(` [${code}]`), line);
      assert.match(line.slice(prefix.length, -` [${code}]`.length), message);
    });
    assert.ok(!stderr.includes('too-short-secret'), 'the secret itself is never printed');
  }

  test('turnpike validate exits 1 listing all of them with file:line:col, key path and code', async () => {
    const r = await run(['validate', '--config', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assertEveryProblem(r.stderr);
  });

  test('turnpike start refuses with the same list, exit 1, no stack, nothing listening', async () => {
    const r = await run(['start', '--config', file, '--no-watch']);
    assert.equal(r.code, 1);
    assertEveryProblem(r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.doesNotMatch(r.stderr, /listening/);
  });

  test('a config whose files are all usable is valid: certificates, client CA, upstream CA and client certificate, JWT PEM and secret files', async () => {
    const client = pki.client(clientCa, { cn: 'gateway' });
    const good = configFile(`listeners:
  - name: web
    protocol: https
    address: 127.0.0.1
    port: 0
    tls:
      certificates: [{ cert: site.pem, key: site-key.pem }]
      clientAuth: { mode: optional, ca: clients-ca.pem }
    hsts: { maxAge: 1y }
upstreams:
  app:
    targets: [{ url: "https://127.0.0.1:9443" }]
    tls: { ca: server-ca.pem, cert: ${client.certPath}, key: ${client.keyPath} }
routes:
  - match: { path: / }
    upstream: app
    plugins:
      - jwt: { keys: ["file:site.pem", { secret: "file:hs.secret" }], algorithms: [ES256, HS256] }
accessLog: { output: ${join(pki.dir, 'logs', 'new', 'access.log')} }
`);
    const r = await run(['validate', '--config', good]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(existsSync(join(pki.dir, 'logs')), false, 'validate creates nothing');
  });
});

describe('TLS files', () => {
  test('a cert file that is not PEM, a missing client CA and a cipher list that matches nothing are each reported at their key', () => {
    const all = problems(
      configFile(
        HTTPS(
          `{ certificates: [{ cert: not-pem.txt, key: site-key.pem }, { cert: site.pem, key: site-key.pem }], ciphers: NO-SUCH-CIPHER, clientAuth: { mode: require, ca: nope.pem } }`,
        ),
      ),
    );
    assert.deepEqual(paths(all), [
      'listeners[0].tls.certificates[0].cert [TP_TLS_CONFIG]',
      'listeners[0].tls.ciphers [TP_TLS_CONFIG]',
      'listeners[0].tls.clientAuth.ca [TP_TLS_CONFIG]',
    ]);
    assert.match(all[0]!.message, /not-pem\.txt .*not a PEM certificate/);
    assert.match(all[1]!.message, /no TLS context can be built for certificates\[1\]/);
  });

  test("relative paths start at the config file's folder, absolute ones are taken as they are", () => {
    assert.deepEqual(problems(configFile(HTTPS(`{ certificates: [{ cert: site.pem, key: ${site.keyPath} }] }`))), []);
  });

  test('a tcp listener that terminates TLS is checked too', () => {
    const all = problems(
      configFile(`listeners:
  - { name: t, protocol: tcp, port: 0, upstream: pg, tls: { certificates: [{ cert: site.pem, key: gone-key.pem }] } }
upstreams: { pg: { targets: [{ url: "tcp://127.0.0.1:5432" }] } }
`),
    );
    assert.deepEqual(paths(all), ['listeners[0].tls.certificates[0].key [TP_TLS_CONFIG]']);
  });
});

describe('plugin checks', () => {
  const route = (
    plugins: string,
    extra = '',
  ) => `listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes:
  - match: { path: / }
    respond: { body: ok }
    plugins:
${plugins}
${extra}`;

  test('jwt: a key for none of the algorithms, a file without a PEM block, a short JWK secret', () => {
    const all = problems(
      configFile(
        route(`      - jwt:
          algorithms: [RS256, HS256]
          keys: ["file:site.pem", "file:not-pem.txt", { kty: oct, k: c2hvcnQ }]`),
      ),
    );
    assert.deepEqual(paths(all), [
      'routes[0].plugins[0].jwt.keys[0] [TP_CONFIG_INVALID]',
      'routes[0].plugins[0].jwt.keys[1] [TP_CONFIG_INVALID]',
      'routes[0].plugins[0].jwt.keys[2].k [TP_CONFIG_INVALID]',
    ]);
    assert.match(all[0]!.message, /^an EC P-256 key, usable with none of the configured algorithms \(RS256, HS256\)$/);
    assert.match(all[1]!.message, /^not-pem\.txt: expected a PEM block/);
    assert.match(all[2]!.message, /at least 32 bytes/);
  });

  test('a store: redis without stores.redis is a bad reference for cache and rate-limit; with stores.redis it is fine', () => {
    const plugins = `      - rate-limit: { limits: [{ requests: 1, per: 1s }], store: redis }
      - cache: { store: redis }`;
    assert.deepEqual(paths(problems(configFile(route(plugins)))), [
      'routes[0].plugins[0].rate-limit.store [TP_CONFIG_BAD_REFERENCE]',
      'routes[0].plugins[1].cache.store [TP_CONFIG_BAD_REFERENCE]',
    ]);
    assert.deepEqual(
      problems(configFile(route(plugins, 'stores: { redis: { url: "redis://127.0.0.1:6379" } }\n'))),
      [],
    );
  });

  test('allow and cache purge name consumers and groups that exist', () => {
    const consumers =
      'consumers: [{ name: bob, groups: [staff], credentials: { apiKeys: ["0123456789abcdef0123"] } }]\n';
    const all = problems(
      configFile(
        route(
          `      - key-auth: {}
      - allow: { consumers: [bob, alice], groups: [staff, admins] }
      - cache: { purge: { consumers: [carol] } }`,
          consumers,
        ),
      ),
    );
    assert.deepEqual(paths(all), [
      'routes[0].plugins[1].allow.consumers[1] [TP_CONFIG_BAD_REFERENCE]',
      'routes[0].plugins[1].allow.groups[1] [TP_CONFIG_BAD_REFERENCE]',
      'routes[0].plugins[2].cache.purge.consumers[0] [TP_CONFIG_BAD_REFERENCE]',
    ]);
    assert.match(all[0]!.message, /names consumer "alice", which is not defined under consumers/);
    assert.match(all[1]!.message, /no consumer is in group "admins"/);
  });

  test('global plugins are checked, and a plugin config its schema refuses is reported once, by the schema', () => {
    const all = problems(
      configFile(`listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
plugins:
  - rate-limit: { limits: [{ requests: 1, per: 1s }], store: redis }
  - jwt: { keys: [{ secret: short }], algorithms: [none] }
`),
    );
    assert.deepEqual(paths(all), [
      'plugins[0].rate-limit.store [TP_CONFIG_BAD_REFERENCE]',
      'plugins[1].jwt.algorithms[0] [TP_CONFIG_INVALID]',
    ]);
  });
});

describe('the access log', () => {
  test('a folder, or a file under a file, cannot be the output; a missing file in a writable folder can (and is not created)', () => {
    const dir = join(pki.dir, 'log-dir');
    mkdirSync(dir, { recursive: true });
    const output = (path: string) =>
      problems(configFile(`listeners: [{ name: web, protocol: http, port: 0 }]\naccessLog: { output: ${path} }\n`));
    const folder = output(dir);
    assert.deepEqual(paths(folder), ['accessLog.output [TP_CONFIG_FILE]']);
    assert.match(folder[0]!.message, /is a folder, not a file/);
    assert.deepEqual(paths(output(join(site.certPath, 'x.log'))), ['accessLog.output [TP_CONFIG_FILE]']);
    assert.deepEqual(output(join(dir, 'sub', 'access.log')), []);
    assert.equal(existsSync(join(dir, 'sub')), false);
    assert.deepEqual(
      problems(
        configFile(
          `listeners: [{ name: web, protocol: http, port: 0 }]\naccessLog: { enabled: false, output: ${dir} }\n`,
        ),
      ),
      [],
    );
  });
});

describe('reload', () => {
  test('a reload runs the same checks: every problem is reported and the running config stays', async () => {
    const gw = await startGatewayYaml(`listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ match: { path: / }, respond: { body: ok } }]
`);
    try {
      const version = gw.runtime.current.version;
      writeFileSync(
        gw.file,
        `listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes:
  - match: { path: / }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 1, per: 1s }], store: redis } }, { jwt: { keys: ["file:${join(pki.dir, 'gone.pem')}"], algorithms: [RS256] } }]
accessLog: { enabled: false }
`,
      );
      const result = await new ConfigReloader(gw.runtime, gw.file, quietLog).reload('test');
      assert.equal(result.ok, false);
      assert.match(
        result.error!,
        /rate-limit\.store: .*\[TP_CONFIG_BAD_REFERENCE\]\n.*jwt\.keys\[0\]: cannot read .*gone\.pem.*\[TP_CONFIG_FILE\]$/,
      );
      assert.equal(gw.runtime.current.version, version);
    } finally {
      await gw.stop();
    }
  });
});
