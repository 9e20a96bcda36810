// `validate` on aggregate routes: the upstreams, calls and placeholders they name are checked, each at its line.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import { explainConfigFile } from '../../src/explain/offline.ts';
import { formatExplanation } from '../../src/explain/format.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const config = (
  calls: string,
  upstreams = 'users: { targets: [{ url: "http://127.0.0.1:9001" }] }',
) => `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  ${upstreams}
  l4: { targets: [{ url: "tcp://127.0.0.1:9002" }] }
routes:
  - name: profile
    match: { path: /profile/:id }
    aggregate:
      calls:
${calls}
`;

/** "line: path: message" of each problem (empty: valid). */
function problems(text: string): string[] {
  try {
    loadConfigText(text, 'cfg.yaml', { ...LOAD_OPTIONS, env: {}, readFiles: false });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`);
  }
}

test('a valid aggregate loads', () => {
  assert.deepEqual(
    problems(
      config(`        - { name: user, upstream: users, path: "/users/{params.id}" }
        - { name: tier, upstream: users, path: "/tiers/{user.body.tier[0].id}", after: [user], headers: { x-etag: "{user.headers.etag}" } }`),
    ),
    [],
  );
});

test('a call naming an unknown upstream, or a tcp one, is refused at its line', () => {
  const found = problems(
    config(`        - { name: user, upstream: userz, path: /u }
        - { name: raw, upstream: l4, path: /r }`),
  );
  assert.equal(found.length, 2, found.join('\n'));
  assert.match(
    found[0]!,
    /^10: routes\[0\]\.aggregate\.calls\[0\]\.upstream: route "profile" call "user" names upstream "userz", which is not defined/,
  );
  assert.match(found[1]!, /^11: .*call "raw" needs an upstream with http:\/\/ or https:\/\/ targets/);
});

test('after naming no call, a cycle, a placeholder reading an answer not waited for, a bad placeholder', () => {
  const found = problems(
    config(`        - { name: a, upstream: users, path: "/a/{b.body.id}" }
        - { name: b, upstream: users, path: /b, after: [c] }
        - { name: c, upstream: users, path: /c, after: [b] }
        - { name: d, upstream: users, path: "/d/{nope}", after: [zz] }
        - { name: query, upstream: users, path: /q }`),
  ).join('\n');
  assert.match(found, /calls\[0\]\.path: reads the answer of "b", which this call does not wait for: add after: \[b\]/);
  assert.match(found, /calls\[1\]\.after: calls wait for each other: b -> c -> b/);
  assert.match(found, /calls\[3\]\.after\[0\]: names call "zz", which is not one of this aggregate's calls/);
  assert.match(found, /calls\[3\]\.path: path: \{nope\}: a call's answer offers/);
  assert.match(found, /calls\[4\]\.name: params, query, headers and consumer name the request's own placeholders/);
});

test('two calls with one name', () => {
  const found = problems(
    config(`        - { name: a, upstream: users, path: /a }
        - { name: a, upstream: users, path: /b }`),
  );
  assert.deepEqual(found, ['11: routes[0].aggregate.calls[1].name: call name "a" is already used by calls[0]']);
});

test('turnpike explain names the calls an aggregate makes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-aggregate-'));
  const file = join(dir, 'turnpike.yaml');
  writeFileSync(
    file,
    config(`        - { name: user, upstream: users, path: "/users/{params.id}" }
        - { name: tier, upstream: users, path: "/tiers/{user.body.tier}", after: [user], optional: true }`),
  );
  const e = await explainConfigFile(file, { method: 'GET', url: 'http://localhost:8080/profile/7' }, () => undefined);
  assert.equal(e.terminal?.kind, 'aggregate');
  assert.equal(e.outcome.by, 'aggregate');
  const text = formatExplanation(e);
  assert.match(text, /call user: GET users \/users\/\{params\.id\} \(at once\)/);
  assert.match(text, /call tier: GET users \/tiers\/\{user\.body\.tier\} \(after user, optional\)/);
});
