// `validate` on the mirror plugin: the upstream it names is checked at its line; share, maxBodySize and queue
// are parsed (20%, 1mb) or refused; `turnpike explain` says what the mirror would do.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import { explainConfigFile } from '../../src/explain/offline.ts';
import { formatExplanation } from '../../src/explain/format.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const config = (mirror: string) => `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  checkout-stable: { targets: [{ url: "http://127.0.0.1:9001" }] }
  checkout-next: { targets: [{ url: "http://127.0.0.1:9002" }] }
  l4: { targets: [{ url: "tcp://127.0.0.1:9003" }] }
routes:
  - name: checkout
    match: { path: /checkout }
    upstream: checkout-stable
    plugins:
      - mirror: ${mirror}
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

test("the issue's mirror loads", () => {
  assert.deepEqual(problems(config('{ upstream: checkout-next, share: 20%, maxBodySize: 1mb, queue: 100 }')), []);
});

test('an unknown upstream, or a tcp one, is refused at its line', () => {
  const unknown = problems(config('{ upstream: checkout-nxt }'));
  assert.equal(unknown.length, 1, unknown.join('\n'));
  assert.match(
    unknown[0]!,
    /^11: routes\[0\]\.plugins\[0\]\.mirror\.upstream: names upstream "checkout-nxt", which is not defined under upstreams \(defined: checkout-stable, checkout-next, l4\)/,
  );
  assert.match(
    problems(config('{ upstream: l4 }'))[0]!,
    /^11: .*needs an upstream with http:\/\/ or https:\/\/ targets/,
  );
});

test('share, maxBodySize and queue are checked', () => {
  assert.match(problems(config('{ upstream: checkout-next, share: 120% }'))[0]!, /mirror\.share: expected a share/);
  assert.match(problems(config('{ upstream: checkout-next, maxBodySize: lots }'))[0]!, /mirror\.maxBodySize/);
  assert.match(problems(config('{ upstream: checkout-next, queue: 0 }'))[0]!, /mirror\.queue/);
  assert.match(problems(config('{ share: 20% }'))[0]!, /mirror\.upstream/);
});

test('explain says what the mirror would do, changing nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'turnpike-mirror-'));
  const file = join(dir, 'turnpike.yaml');
  writeFileSync(file, config('{ upstream: checkout-next, share: 20%, maxBodySize: 1mb, queue: 100 }'));
  const text = formatExplanation(
    await explainConfigFile(file, { method: 'POST', url: 'http://localhost:8080/checkout' }, () => undefined),
  );
  assert.match(
    text,
    /mirror.*copies 20% of requests to upstream "checkout-next" \(bodies up to 1048576 bytes; 0 of 100/,
  );
});
