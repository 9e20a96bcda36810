// `acme:` on an https listener: what validate refuses, each at its key path (a wildcard through http-01 or
// tls-alpn-01, storage: redis without stores.redis, dns-01 without its hook, an https listener with neither tls nor
// acme), and what it takes (acme alone, acme beside tls, the defaults).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

function load(acme: string, extra = '') {
  return loadConfigText(
    `listeners:
  - name: websecure
    protocol: https
    port: 0
${acme}
${extra}`,
    'acme.yaml',
    { ...LOAD_OPTIONS, readFiles: false },
  ).config;
}

function problems(acme: string, extra = ''): string[] {
  try {
    load(acme, extra);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.line} ${p.path} [${p.code}]: ${p.message}`);
  }
}

const ACME = (lines: string) => `    acme:
      directory: "https://acme.example.test/dir"
      storage: /var/lib/turnpike/acme
${lines}`;

test('a wildcard name with http-01 (the default) or tls-alpn-01 is refused at its key; dns-01 takes it, with a hook', () => {
  const http = problems(ACME('      domains: [a.example.com, "*.example.com"]'));
  assert.equal(http.length, 1, http.join('\n'));
  assert.match(
    http[0]!,
    /^8 listeners\[0\]\.acme\.domains\[1\] \[TP_CONFIG_INVALID\]: \*\.example\.com: .*dns-01, not http-01/,
  );
  const alpn = problems(ACME('      challenge: tls-alpn-01\n      domains: ["*.example.com"]'));
  assert.match(alpn.join('\n'), /listeners\[0\]\.acme\.domains\[0\] .*not tls-alpn-01/);
  const noHook = problems(ACME('      challenge: dns-01\n      domains: ["*.example.com"]'));
  assert.match(noHook.join('\n'), /listeners\[0\]\.acme\.hook .*needs a hook/);
  assert.deepEqual(
    problems(ACME('      challenge: dns-01\n      hook: ./dns-hook\n      domains: ["*.example.com"]')),
    [],
  );
});

test('storage: redis needs stores.redis', () => {
  const found = problems(ACME('      domains: [a.example.com]').replace('/var/lib/turnpike/acme', 'redis'));
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(
    found[0]!,
    /^7 listeners\[0\]\.acme\.storage \[TP_CONFIG_BAD_REFERENCE\]: redis needs the top-level stores\.redis/,
  );
  assert.deepEqual(
    problems(
      ACME('      domains: [a.example.com]').replace('/var/lib/turnpike/acme', 'redis'),
      'stores: { redis: { url: "redis://127.0.0.1:6379" } }',
    ),
    [],
  );
});

test('an https listener takes tls, acme or both; acme defaults', () => {
  assert.match(problems('').join('\n'), /listeners\[0\].*takes tls, acme or both/);
  const config = load(ACME('      domains: [A.Example.com]'));
  const l = config.listeners[0]!;
  assert.ok(l.protocol === 'https' && l.acme !== undefined);
  assert.equal(l.tls, undefined);
  assert.deepEqual(l.acme.domains, ['a.example.com']);
  assert.equal(l.acme.challenge, 'http-01');
  assert.equal(l.acme.keyType, 'ecdsa-p256');
  assert.equal(l.acme.renewBefore, 30 * 86_400_000);
  const both = load(
    ACME('      domains: [a.example.com]\n      eab: { kid: kid-1, hmacKey: c2VjcmV0 }'),
    '    tls: { certificates: [{ cert: a.pem, key: a-key.pem }] }',
  );
  const b = both.listeners[0]!;
  assert.ok(b.protocol === 'https' && b.tls !== undefined && b.acme?.eab?.kid === 'kid-1');
});
