// bench/scenarios: choosing scenarios from --scenarios, and the nginx proxy config of the TLS scenarios.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proxyConfig } from '../../bench/nginx.ts';
import { SCENARIOS, parseScenarios } from '../../bench/scenarios/index.ts';

test('--scenarios: the canonical order whatever the order given, spaces and repeats ignored', () => {
  assert.deepEqual(parseScenarios('tcp-stream, plain,https-h2,plain'), ['plain', 'https-h2', 'tcp-stream']);
  assert.deepEqual(parseScenarios(SCENARIOS.join(',')), [...SCENARIOS]);
});

test('--scenarios: an unknown name is refused with the list of known ones', () => {
  assert.throws(() => parseScenarios('plain,https'), /unknown scenario "https", expected some of: plain, conn-close/);
});

test('nginx proxy config: TLS goes on the listen line and in the server block; plain stays as it was', () => {
  const tls = proxyConfig('/d', 8443, 9000, '1', '/d/access.log', {
    listen: 'ssl http2',
    server: '    ssl_certificate /d/c.pem;',
  });
  assert.match(tls, /listen 127\.0\.0\.1:8443 ssl http2 backlog=4096;\n {4}ssl_certificate \/d\/c\.pem;\n/);
  const plain = proxyConfig('/d', 8080, 9000, '1', '/d/access.log');
  assert.match(plain, /listen 127\.0\.0\.1:8080 backlog=4096;\n {4}location \/ \{/);
  assert.doesNotMatch(plain, /ssl/);
});
