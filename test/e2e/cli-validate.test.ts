// `turnpike validate` as CI runs it (several files, FILE or -c, stdin, --no-files, --format json, --strict)
// and `turnpike config --resolved`: the CLI as a child process on src/cli/main.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { tempDir } from '../helpers/servers.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], stdin = '', env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const GOOD = `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  app: { targets: [{ url: "http://127.0.0.1:9001" }] }
routes: [{ name: app, match: { path: / }, upstream: app }]
`;
const BAD = `listeners: [{ name: web, protocol: http, port: 8080 }]
limits: { headerTimeout: 10 }
`;
/** Valid, but --strict has three things to say: a shadowed route, an unused upstream, a password in a URL. */
const SLOPPY = `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  app: { targets: [{ url: "http://bob:hunter2@127.0.0.1:9001" }] }
  spare: { targets: [{ url: "http://127.0.0.1:9002" }] }
routes:
  - { name: all, match: { path: /api }, upstream: app }
  - { name: reads, match: { path: /api, methods: [GET] }, upstream: app }
`;
/** Names files that do not exist (a CI job without the secrets): a certificate and key, a JWT key, a log path. */
const MISSING_CERT = `listeners:
  - name: tls
    protocol: https
    port: 8443
    tls: { certificates: [{ cert: certs/missing.pem, key: certs/missing-key.pem }] }
routes:
  - match: { path: / }
    respond: { body: ok }
    plugins: [{ jwt: { keys: ["file:keys/missing.pem"], algorithms: [RS256] } }]
accessLog: { output: /dev/null/access.log }
`;

function files(texts: Record<string, string>): Record<string, string> {
  const dir = tempDir();
  return Object.fromEntries(
    Object.entries(texts).map(([name, text]) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return [name, file];
    }),
  );
}

describe('turnpike validate', () => {
  test('checks every file it is given, as arguments or -c, and fails when any is invalid', async () => {
    const f = files({ 'good.yaml': GOOD, 'bad.yaml': BAD });
    const both = await run(['validate', '-c', f['bad.yaml']!, '-c', f['good.yaml']!]);
    assert.equal(both.code, 1);
    assert.equal(both.stdout, `${f['good.yaml']}: valid (1 listeners, 1 upstreams, 1 routes)\n`);
    assert.match(
      both.stderr,
      new RegExp(`^error: ${f['bad.yaml']}:2:26 limits\\.headerTimeout: .*\\[TP_CONFIG_INVALID\\]$`, 'm'),
    );
    const args = await run(['validate', f['good.yaml']!, f['good.yaml']!]);
    assert.equal(args.code, 0, args.stderr);
    assert.equal(
      args.stdout.split('\n').filter((l) => l.endsWith('valid (1 listeners, 1 upstreams, 1 routes)')).length,
      2,
    );
    const none = await run(['validate']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /name a config file/);
  });

  test('- reads standard input, as an argument or as -c', async () => {
    for (const args of [
      ['validate', '-'],
      ['validate', '-c', '-'],
    ]) {
      const ok = await run(args, GOOD);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, '<stdin>: valid (1 listeners, 1 upstreams, 1 routes)\n');
      const bad = await run(args, BAD);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^error: <stdin>:2:26 limits\.headerTimeout: /m);
    }
  });

  test('--format json lists every problem with file, line, column, path, message and code', async () => {
    const f = files({ 'good.yaml': GOOD, 'bad.yaml': BAD });
    const r = await run(['validate', '--format', 'json', f['good.yaml']!, '-'], BAD);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as {
      valid: boolean;
      files: { file: string; valid: boolean }[];
      problems: object[];
    };
    assert.equal(out.valid, false);
    assert.deepEqual(
      out.files.map((x) => [x.file, x.valid]),
      [
        [f['good.yaml'], true],
        ['<stdin>', false],
      ],
    );
    assert.equal(out.problems.length, 1);
    assert.deepEqual(Object.keys(out.problems[0]!).sort(), [
      'code',
      'column',
      'file',
      'line',
      'message',
      'path',
      'severity',
    ]);
    assert.deepEqual(
      { ...out.problems[0]!, message: undefined },
      {
        code: 'TP_CONFIG_INVALID',
        file: '<stdin>',
        line: 2,
        column: 26,
        path: 'limits.headerTimeout',
        severity: 'error',
        message: undefined,
      },
    );
  });

  test('--no-files checks everything but the files a config names (a missing certificate)', async () => {
    const f = files({ 'tls.yaml': MISSING_CERT });
    const full = await run(['validate', f['tls.yaml']!]);
    assert.equal(full.code, 1);
    assert.match(full.stderr, /tls\.certificates\[0\]\.cert: .*missing\.pem.*\[TP_TLS_CONFIG\]/);
    assert.match(full.stderr, /jwt\.keys\[0\]: .*keys\/missing\.pem.*\[TP_CONFIG_FILE\]/);
    assert.match(full.stderr, /accessLog\.output: .*\[TP_CONFIG_FILE\]/);
    const noFiles = await run(['validate', '--no-files', f['tls.yaml']!]);
    assert.equal(noFiles.code, 0, noFiles.stderr);
    assert.equal(noFiles.stderr, '');
    // Everything else is still checked.
    const broken = await run(
      ['validate', '--no-files', '-'],
      MISSING_CERT.replace('port: 8443', 'port: 8443\n    colour: red'),
    );
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /listeners\[0\]\.colour: .*\[TP_CONFIG_UNKNOWN_KEY\]/);
    assert.doesNotMatch(broken.stderr, /TP_TLS_CONFIG/);
  });

  test('--strict warns (exit 1) on what is valid but almost surely wrong; without it the file is valid', async () => {
    const plain = await run(['validate', '-'], SLOPPY);
    assert.equal(plain.code, 0, plain.stderr);
    const strict = await run(['validate', '--strict', '-'], SLOPPY);
    assert.equal(strict.code, 1);
    assert.equal(strict.stdout, '<stdin>: valid (1 listeners, 2 upstreams, 2 routes), 3 warnings\n');
    const lines = strict.stderr.trimEnd().split('\n');
    assert.deepEqual(
      lines.map((l) => /\[(\w+)\]$/.exec(l)?.[1]),
      ['TP_CONFIG_URL_CREDENTIALS', 'TP_CONFIG_UNUSED', 'TP_CONFIG_SHADOWED_ROUTE'],
    );
    assert.ok(
      lines.every((l) => l.startsWith('warning: <stdin>:')),
      strict.stderr,
    );
    assert.match(lines[2]!, /route "reads" can never match: route "all"/);
    assert.doesNotMatch(strict.stderr, /hunter2/);
    const json = JSON.parse((await run(['validate', '--strict', '--format', 'json', '-'], SLOPPY)).stdout) as {
      valid: boolean;
      problems: { severity: string }[];
    };
    assert.equal(json.valid, false);
    assert.deepEqual(
      json.problems.map((p) => p.severity),
      ['warning', 'warning', 'warning'],
    );
  });
});

describe('turnpike config --resolved', () => {
  test('prints the config after defaults and ${VAR} expansion, with secrets redacted', async () => {
    const yaml = `listeners: [{ name: web, protocol: http, port: "\${PORT}" }]
upstreams:
  app:
    targets: [{ url: "http://bob:\${PW}@127.0.0.1:9001" }]
    sticky: { cookie: lb, secret: "\${STICKY}" }
consumers: [{ name: app, credentials: { apiKeys: ["\${KEY}"] } }]
routes: [{ name: app, match: { path: / }, upstream: app, plugins: [{ key-auth: {} }] }]
`;
    const env = {
      PORT: '8181',
      PW: 'pw-from-env',
      STICKY: 'sticky-secret-0123456789',
      KEY: 'api-key-0123456789abcdef',
    };
    const r = await run(['config', '--resolved', '-c', '-'], yaml, env);
    assert.equal(r.code, 0, r.stderr);
    for (const secret of Object.values(env).slice(1)) assert.ok(!r.stdout.includes(secret), `${secret} is printed`);
    const out = parse(r.stdout) as any;
    assert.equal(out.listeners[0].port, 8181);
    assert.equal(out.listeners[0].address, '0.0.0.0');
    assert.equal(out.limits.headerTimeout, 10_000);
    assert.equal(out.upstreams.app.targets[0].url, 'http://[redacted]:[redacted]@127.0.0.1:9001/');
    assert.equal(out.upstreams.app.sticky.secret, '[redacted]');
    assert.deepEqual(out.consumers[0].credentials.apiKeys, ['[redacted]']);
    assert.deepEqual(out.routes[0].plugins, [{ 'key-auth': { header: 'x-api-key', hideCredentials: false } }]);
    const json = await run(['config', '--resolved', '--format', 'json', '-c', '-'], yaml, env);
    assert.deepEqual(JSON.parse(json.stdout), out);
  });

  test('an invalid config prints its problems and exits 1', async () => {
    const r = await run(['config', '--resolved', '-c', '-'], BAD);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: <stdin>:2:26 limits\.headerTimeout: /m);
  });
});
