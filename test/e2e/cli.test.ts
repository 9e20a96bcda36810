// The turnpike command, run as a user runs it: a child process on src/cli/main.ts (Node strips the types).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { json, request, tempDir } from '../helpers/servers.ts';
import { PLUGINS } from '../../src/plugins/registry.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'config');
const EXAMPLE_YAML = join(FIXTURES, 'issue-example.yaml');
const EXAMPLE_JSON = join(FIXTURES, 'issue-example.json');
const BAD = join(FIXTURES, 'bad.yaml');

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function launch(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function collect(child: ChildProcess): { out: () => string; err: () => string; done: Promise<Run> } {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { out: () => stdout, err: () => stderr, done };
}

function run(args: readonly string[]): Promise<Run> {
  return collect(launch(args)).done;
}

/** Waits until `text()` matches `pattern` (or the process ends, or 10 s pass). */
async function waitFor(text: () => string, pattern: RegExp, ended: Promise<Run>): Promise<RegExpMatchArray> {
  let over = false;
  void ended.then(() => (over = true));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = text().match(pattern);
    if (m) return m;
    if (over || Date.now() > deadline) assert.fail(`no ${pattern} in output:\n${text()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('turnpike validate', () => {
  test('exits 0 on the issue example, in YAML and in JSON', async () => {
    for (const file of [EXAMPLE_YAML, EXAMPLE_JSON]) {
      const r = await run(['validate', '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${file}: valid (1 listeners, 2 upstreams, 4 routes)\n`);
      assert.equal(r.stderr, '');
    }
  });

  test('exits 1 on a bad file and prints every problem with file:line:col, key path and code', async () => {
    const r = await run(['validate', '-c', BAD]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    const expected: [string, string, string][] = [
      ['7:18', 'limits.headerTimeout', 'TP_CONFIG_INVALID'],
      ['15:15', 'routes[0].upstream', 'TP_CONFIG_BAD_REFERENCE'],
      ['17:20', 'routes[0].plugins[0].rewrite.stripPrefx', 'TP_CONFIG_UNKNOWN_KEY'],
      ['18:1', 'colour', 'TP_CONFIG_UNKNOWN_KEY'],
    ];
    assert.equal(lines.length, expected.length, r.stderr);
    expected.forEach(([at, path, code], i) => {
      const line = lines[i]!;
      assert.ok(line.startsWith(`error: ${BAD}:${at} ${path}: `), line);
      assert.ok(line.endsWith(` [${code}]`), line);
    });
    assert.match(lines[0]!, /expected a duration such as 250ms, 5s, 1m, 1h, 1d or 1y, got "10 seconds"/);
    assert.match(lines[1]!, /route "users" names upstream "user"/);
  });

  test('exits 1 when the file does not exist', async () => {
    const file = join(tempDir(), 'missing.yaml');
    const r = await run(['validate', '--config', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: ${file}: cannot read config: no such file [TP_CONFIG_NOT_FOUND]\n`);
  });
});

describe('turnpike schema', () => {
  test('prints a JSON Schema of the config that documents the plugins', async () => {
    const r = await run(['schema']);
    assert.equal(r.code, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as {
      $schema: string;
      type: string;
      properties: Record<string, any>;
    };
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.type, 'object');
    for (const key of ['listeners', 'limits', 'upstreams', 'routes', 'plugins', 'consumers', 'stores'])
      assert.ok(key in schema.properties, key);
    for (const plugins of [schema.properties.plugins, schema.properties.routes.items.properties.plugins]) {
      const forms = (plugins.items.anyOf as { properties: Record<string, any> }[]).map((f) =>
        Object.keys(f.properties),
      );
      assert.deepEqual(forms.flat().sort(), [...PLUGINS.keys()].sort());
    }
    const rewrite = schema.properties.routes.items.properties.plugins.items.anyOf.find((f: any) => f.properties.rewrite)
      .properties.rewrite;
    assert.deepEqual(Object.keys(rewrite.properties).sort(), ['addPrefix', 'regex', 'stripPrefix']);
    assert.equal(rewrite.additionalProperties, false);
  });

  test('the printed schema accepts the issue example and rejects a typo in a plugin', async () => {
    const r = await run(['schema']);
    const validator = z.fromJSONSchema(JSON.parse(r.stdout));
    const example = parse(readFileSync(EXAMPLE_YAML, 'utf8'));
    const ok = validator.safeParse(example);
    assert.ok(ok.success, JSON.stringify(ok.error?.issues));
    example.routes[1].plugins[0].rewrite.stripPrefx = '/orders';
    const bad = validator.safeParse(example);
    assert.equal(bad.success, false);
  });

  test('the printed schema tells editors what a duration is: a number with its unit, or 0', async () => {
    const validator = z.fromJSONSchema(JSON.parse((await run(['schema'])).stdout));
    const withTimeout = (headerTimeout: unknown) =>
      validator.safeParse({ listeners: [{ name: 'web', protocol: 'http', port: 8080 }], limits: { headerTimeout } })
        .success;
    for (const good of ['250ms', '10s', '1.5m', 0]) assert.equal(withTimeout(good), true, String(good));
    for (const bad of [30, '30', 'banana', '10 seconds']) assert.equal(withTimeout(bad), false, String(bad));
  });
});

describe('turnpike start', () => {
  test('exits 1 with the error when the config is invalid, binding nothing', async () => {
    const r = await run(['start', '--config', BAD]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^error: ${escape(BAD)}:7:18 limits\\.headerTimeout: .*\\[TP_CONFIG_INVALID\\]$`, 'm'),
    );
    assert.match(r.stderr, /\[TP_CONFIG_BAD_REFERENCE\]/);
    assert.doesNotMatch(r.stderr, /listening/);
  });

  test('exits 1 when the config file does not exist', async () => {
    const r = await run(['start', '--config', join(tempDir(), 'none.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[TP_CONFIG_NOT_FOUND\]/);
  });

  test('serves a valid config and exits 0 on SIGTERM', async () => {
    const file = join(tempDir(), 'turnpike.yaml');
    writeFileSync(
      file,
      [
        'listeners:',
        '  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }',
        'routes:',
        '  - match: { path: /healthz }',
        '    respond: { body: ok }',
        'accessLog: { enabled: false }',
        '',
      ].join('\n'),
    );
    const child = launch(['start', '--config', file, '--no-watch']);
    const io = collect(child);
    const [, port] = await waitFor(io.err, /"port":(\d+).*"msg":"listening"/, io.done);
    const r = await request(Number(port), '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    child.kill('SIGTERM');
    const end = await io.done;
    assert.equal(end.code, 0, end.stderr);
  });

  test('a SIGHUP or SIGTERM sent as soon as it logs "listening" is handled, not fatal', async () => {
    const file = join(tempDir(), 'turnpike.yaml');
    writeFileSync(
      file,
      'listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]\naccessLog: { enabled: false }\n',
    );
    for (let i = 0; i < 5; i++) {
      const child = launch(['start', '--config', file, '--no-watch']);
      const io = collect(child);
      await waitFor(io.err, /"msg":"listening"/, io.done);
      child.kill('SIGHUP');
      await waitFor(io.err, /"msg":"config reloaded"/, io.done);
      child.kill('SIGTERM');
      const end = await io.done;
      assert.deepEqual([end.code, end.signal], [0, null], end.stderr);
    }
    for (let i = 0; i < 5; i++) {
      const child = launch(['start', '--config', file, '--no-watch']);
      const io = collect(child);
      await waitFor(io.err, /"msg":"listening"/, io.done);
      child.kill('SIGTERM');
      const end = await io.done;
      assert.deepEqual([end.code, end.signal], [0, null], end.stderr);
    }
  });
});

describe('turnpike demo', () => {
  test('--port 0 starts on a free port, prints its URL and its dashboard, balances across three echoes and stops on SIGTERM', async () => {
    const child = launch(['demo', '--port', '0', '--admin-port', '0']);
    const io = collect(child);
    const [url, port] = await waitFor(io.out, /http:\/\/127\.0\.0\.1:(\d+)/, io.done);
    const [, adminPort] = await waitFor(io.out, /dashboard: http:\/\/127\.0\.0\.1:(\d+)\//, io.done);
    assert.equal((await request(Number(adminPort), '/healthz')).status, 200);
    assert.match((await request(Number(adminPort), '/')).body, /<html/i);
    assert.notEqual(Number(port), 0, url);
    const services: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(Number(port), '/echo/x');
      assert.equal(r.status, 200, r.body);
      const body = json<{ service: string; url: string }>(r);
      assert.equal(body.url, '/echo/x');
      services.push(body.service);
    }
    assert.deepEqual(services, ['echo-1', 'echo-2', 'echo-3']);
    const health = await request(Number(port), '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok');
    assert.match((await request(Number(adminPort), '/metrics')).body, /turnpike_requests_total\{route="echo"/);
    child.kill('SIGTERM');
    const end = await io.done;
    assert.equal(end.code, 0, end.stderr);
  });

  test('rejects a port that is not a number', async () => {
    const r = await run(['demo', '--port', 'eighty']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /expected a port number from 0 to 65535/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('the bin, npm start and the runtime agree on the V8 flags', async () => {
  const { NODE_FLAGS } = await import('../../src/runtime/node-flags.ts');
  const root = new URL('../../', import.meta.url);
  // None on the shebang (a Node older than 24 must reach the bin's version check): the bin adds them itself.
  const shebang = readFileSync(new URL('src/cli/main.ts', root), 'utf8').split('\n')[0]!;
  assert.equal(shebang, '#!/usr/bin/env node');
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
  assert.equal(pkg.scripts.start, `node ${NODE_FLAGS.join(' ')} dist/cli/main.js demo`);
});
