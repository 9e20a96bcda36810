// `turnpike test` as CI runs it: the built CLI on a config and a cases file, its exit code, report and JUnit XML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../helpers/process.ts';
import { tempDir } from '../helpers/servers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE_CONFIG = join(ROOT, 'examples', 'turnpike.yaml');
const EXAMPLE_CASES = join(ROOT, 'examples', 'routes.test.yaml');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function turnpike(args: readonly string[]): Promise<Run> {
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

test("examples/turnpike.yaml is the README's reference config, and examples/routes.test.yaml passes on it", async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /## Configuration\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(readFileSync(EXAMPLE_CONFIG, 'utf8'), block, 'examples/turnpike.yaml differs from the README block');
  const r = await turnpike(['test', '--config', EXAMPLE_CONFIG, EXAMPLE_CASES]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^7 cases, 7 passed, 0 failed/m);
  assert.doesNotMatch(r.stdout, /FAIL/);
});

/** A config whose routes need an API key, a JWT from a local key, a JWT from an identity provider's JWKS, and a
 *  rate limit in Redis (which is not running: the run must use memory). */
function authFixture(): string {
  const dir = tempDir();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'rsa-public.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'rsa-private.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'other-private.pem'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'idp-key.json'), JSON.stringify({ ...ec.privateKey.export({ format: 'jwk' }), kid: 'k1' }));
  writeFileSync(
    join(dir, 'turnpike.yaml'),
    `
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  orders: { targets: [{ url: "http://10.0.0.1:8080" }] }
  accounts: { targets: [{ url: "https://accounts.internal" }] }
  profiles: { targets: [{ url: "http://10.0.0.3" }], http2: true }
consumers:
  - name: mobile
    groups: [partners]
    credentials: { apiKeys: ["mobile-key-0123456789"], jwt: { subject: user-123 } }
stores: { redis: { url: "redis://127.0.0.1:1" } }
routes:
  - name: orders
    match: { path: /orders }
    upstream: orders
    plugins:
      - key-auth: { header: x-api-key }
      - allow: { groups: [partners] }
      - rate-limit: { limits: [{ requests: 2, per: 1m }], key: consumer, store: redis, onStoreError: deny }
  - name: accounts
    match: { path: /accounts }
    upstream: accounts
    plugins: [{ jwt: { keys: ["file:rsa-public.pem"], algorithms: [RS256] } }]
  - name: profiles
    match: { path: /profiles }
    upstream: profiles
    plugins:
      - jwt: { jwksUri: "https://idp.example.com/jwks.json", algorithms: [ES256], issuer: "https://idp.example.com" }
accessLog: { enabled: false }
`,
  );
  writeFileSync(
    join(dir, 'auth.test.yaml'),
    `
cases:
  - name: an API key of a partner
    request: { url: "http://api.example.com/orders/1", headers: { x-api-key: mobile-key-0123456789 } }
    expect:
      route: orders
      status: 200
      target: http://10.0.0.1:8080
      upstreamRequest: { path: /orders/1, headers: { x-consumer-name: mobile, x-consumer-groups: partners } }
      response: { headers: { ratelimit: { regex: "r=1" } } }
  - name: no API key
    request: { url: "http://api.example.com/orders/1" }
    expect: { route: orders, status: 401, upstreamRequest: null }
  - name: the third request in a minute is refused (memory store, though the config says redis)
    request: { url: "http://api.example.com/orders/1", headers: { x-api-key: mobile-key-0123456789 } }
    repeat: 2
    expect: { status: 429, upstreamRequest: null, response: { headers: { retry-after: { regex: "^[0-9]+$" } } } }
  - name: a JWT signed by the configured key
    request: { url: "http://api.example.com/accounts/me", jwt: { key: rsa-private.pem, claims: { sub: someone } } }
    expect:
      status: 200
      upstream: accounts
      target: https://accounts.internal
      upstreamRequest: { headers: { authorization: { regex: "^Bearer ey" } } }
  - name: a JWT signed by another key
    request: { url: "http://api.example.com/accounts/me", jwt: { key: other-private.pem } }
    expect: { status: 401, upstreamRequest: null }
  - name: an expired JWT
    request: { url: "http://api.example.com/accounts/me", jwt: { key: rsa-private.pem, claims: { exp: 1000 } } }
    expect: { status: 401 }
  - name: a JWT from the identity provider names the consumer (h2c upstream)
    request:
      method: POST
      url: "http://api.example.com/profiles/7"
      body: '{"name":"x"}'
      jwt: { key: idp-key.json, claims: { iss: "https://idp.example.com", sub: user-123 } }
    expect:
      status: 200
      upstream: profiles
      upstreamRequest: { method: POST, body: '{"name":"x"}', headers: { x-consumer-name: mobile } }
`,
  );
  return dir;
}

test('API keys, JWTs (a local key and a JWKS), rate limits and h2c upstreams run for real', async () => {
  const dir = authFixture();
  const r = await turnpike(['test', '-c', join(dir, 'turnpike.yaml'), join(dir, 'auth.test.yaml')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^7 cases, 7 passed, 0 failed/m);
});

test('a failing case exits 1 with a diff, and --junit writes XML with the counts', async () => {
  const dir = authFixture();
  writeFileSync(
    join(dir, 'failing.test.yaml'),
    `cases:
  - name: passes
    request: { url: "http://api.example.com/orders/1" }
    expect: { status: 401 }
  - name: forgets the key
    request: { url: "http://api.example.com/orders/1" }
    expect: { route: orders, status: 200, upstreamRequest: { path: /orders/1 } }
`,
  );
  const junit = join(dir, 'junit.xml');
  const r = await turnpike([
    'test',
    '-c',
    join(dir, 'turnpike.yaml'),
    join(dir, 'failing.test.yaml'),
    '--junit',
    junit,
  ]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok {3}passes$/m);
  assert.match(r.stdout, /^FAIL forgets the key \(.*failing\.test\.yaml:5\)$/m);
  assert.match(r.stdout, /^ {7}status: expected 200, got 401$/m);
  assert.match(r.stdout, /^ {7}upstreamRequest: expected a request upstream, got none/m);
  assert.match(r.stdout, /^ {7}the answer: 401 application\/problem\+json .*TP_UNAUTHENTICATED/m);
  assert.doesNotMatch(r.stdout, /route: expected/);
  assert.match(r.stdout, /^2 cases, 1 passed, 1 failed/m);
  // Parsed by a real XML parser (python3 is provisioned for the tests).
  const parsed = spawnSync(
    'python3',
    [
      '-c',
      `import json, sys, xml.etree.ElementTree as E
s = E.parse(sys.argv[1]).getroot().find('testsuite')
print(json.dumps({'tests': s.get('tests'), 'failures': s.get('failures'),
  'cases': [[c.get('name'), (c.find('failure').get('message') if c.find('failure') is not None else None)] for c in s.findall('testcase')]}))`,
      junit,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(parsed.status, 0, parsed.stderr);
  assert.deepEqual(JSON.parse(parsed.stdout), {
    tests: '2',
    failures: '1',
    cases: [
      ['passes', null],
      ['forgets the key', 'status: expected 200, got 401'],
    ],
  });
});

test('a bad cases file is refused with file, line, key path and code, before anything runs', async () => {
  const dir = authFixture();
  const file = join(dir, 'bad.test.yaml');
  writeFileSync(
    file,
    `cases:
  - name: typo
    request: { url: "http://api.example.com/orders" }
    expect: { rout: orders }
  - name: unknown names
    request: { url: "https://api.example.com/orders", jwt: { key: missing.pem } }
    expect: { route: order, status: "200" }
`,
  );
  const r = await turnpike(['test', '-c', join(dir, 'turnpike.yaml'), file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  const want: [string, string, string][] = [
    ['4:15', 'cases[0].expect.rout: unknown key "rout"; did you mean "route"?', 'TP_CONFIG_UNKNOWN_KEY'],
    ['7:37', 'cases[1].expect.status: expected a number, got the string "200"', 'TP_CONFIG_INVALID'],
  ];
  assert.equal(lines.length, want.length, r.stderr);
  want.forEach(([at, text, code], i) => {
    assert.ok(lines[i]!.startsWith(`error: ${file}:${at} ${text}`), lines[i]);
    assert.ok(lines[i]!.endsWith(`[${code}]`), lines[i]);
  });
  // Once the shape is right, the names are checked against the config, and the key files read.
  writeFileSync(file, readFileSync(file, 'utf8').replace('rout:', 'route:').replace('"200"', '200'));
  const second = await turnpike(['test', '-c', join(dir, 'turnpike.yaml'), file]);
  assert.equal(second.code, 1);
  const problems = second.stderr.trimEnd().split('\n');
  assert.equal(problems.length, 3, second.stderr);
  assert.match(
    problems[0]!,
    /:6:21 cases\[1\]\.request\.url: the config has no https listener .*\[TP_CONFIG_BAD_REFERENCE\]$/,
  );
  assert.match(
    problems[1]!,
    /:6:67 cases\[1\]\.request\.jwt\.key: cannot use .*missing\.pem to sign: no such file \[TP_CONFIG_FILE\]$/,
  );
  assert.match(
    problems[2]!,
    /:7:22 cases\[1\]\.expect\.route: no route is named "order" \(routes: orders, accounts, profiles\) \[TP_CONFIG_BAD_REFERENCE\]$/,
  );
});
