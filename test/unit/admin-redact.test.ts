// GET /api/config's redaction: every value the schemas mark secret() is "[redacted]", found by the schema (a key
// named "secret" in a header value is not touched), and nothing else changes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword } from '../../src/auth/password.ts';
import { parseConfig } from '../../src/index.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { REDACTED, redactConfig } from '../../src/admin/redact.ts';

const SECRETS = {
  apiKey: 'key-0123456789abcdef-alpha',
  jwtSecret: 'jwt-secret-0123456789abcdef0123456789abcdef',
  jwkK: 'c2VjcmV0LWp3ay1tYXRlcmlhbC0wMTIzNDU2Nzg5YWJjZGVm',
  clientSecret: 'introspection-client-secret-xyz',
  sticky: 'sticky-secret-0123456789',
  redisPassword: 'redis-pass-987',
  adminToken: 'admin-token-0123456789abcdef',
  tlsKey: '/etc/keys/upstream-client-key.pem',
};

test('every secret the schemas mark is redacted, by schema, and nothing else changes', async () => {
  const passwordHash = await hashPassword('s3cret!');
  const config = parseConfig(`
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  app:
    targets: [{ url: "http://127.0.0.1:9000" }]
    sticky: { cookie: lb, secret: "${SECRETS.sticky}" }
    tls: { cert: /etc/keys/client.pem, key: "${SECRETS.tlsKey}" }
routes:
  - name: api
    match: { path: /api }
    upstream: app
    plugins:
      - jwt:
          algorithms: [HS256]
          keys:
            - { secret: "${SECRETS.jwtSecret}", kid: one }
            - { kty: oct, kid: two, k: "${SECRETS.jwkK}" }
      - headers: { request: { set: { x-secret: visible-header-value } } }
  - name: intro
    match: { path: /intro }
    upstream: app
    plugins:
      - oauth2-introspection: { url: "http://idp.example/introspect", clientId: gw, clientSecret: "${SECRETS.clientSecret}" }
consumers:
  - name: alice
    credentials: { apiKeys: ["${SECRETS.apiKey}"], basic: { username: alice, passwordHash: "${passwordHash}" } }
stores:
  redis: { url: "redis://user:${SECRETS.redisPassword}@127.0.0.1:6379/0" }
admin:
  address: 0.0.0.0
  port: 9901
  auth: { tokens: ["${SECRETS.adminToken}"] }
`);
  const redacted = redactConfig(config, PLUGIN_SCHEMAS) as any;
  const text = JSON.stringify(redacted);
  for (const [name, value] of Object.entries(SECRETS)) assert.ok(!text.includes(value), `${name} leaks: ${text}`);
  assert.ok(!text.includes(passwordHash), 'password hash leaks');
  assert.deepEqual(redacted.consumers[0].credentials.apiKeys, [REDACTED]);
  assert.equal(redacted.consumers[0].credentials.basic.passwordHash, REDACTED);
  assert.equal(redacted.consumers[0].credentials.basic.username, 'alice');
  assert.equal(redacted.upstreams.app.sticky.secret, REDACTED);
  assert.equal(redacted.upstreams.app.tls.key, REDACTED);
  assert.equal(redacted.upstreams.app.tls.cert, '/etc/keys/client.pem');
  assert.equal(redacted.stores.redis.url, `redis://${REDACTED}:${REDACTED}@127.0.0.1:6379/0`);
  assert.deepEqual(redacted.admin.auth.tokens, [REDACTED]);
  const jwt = redacted.routes[0].plugins[0];
  assert.equal(jwt.name, 'jwt');
  assert.equal(jwt.config.keys[0].secret, REDACTED);
  assert.equal(jwt.config.keys[0].kid, 'one');
  assert.equal(jwt.config.keys[1].k, REDACTED);
  assert.equal(jwt.config.keys[1].kid, 'two');
  // Not a secret by schema, whatever its name says.
  assert.equal(redacted.routes[0].plugins[1].config.request.set['x-secret'], 'visible-header-value');
  assert.equal(redacted.routes[1].plugins[0].config.clientSecret, REDACTED);
  assert.equal(redacted.routes[1].plugins[0].config.clientId, 'gw');
  // Everything else is the running config as it is.
  assert.equal(redacted.listeners[0].port, 8080);
  assert.equal(redacted.routes[0].match.path, '/api');
});

test('TLS listener keys are redacted, certificate paths kept', () => {
  const config = parseConfig(`
listeners:
  - name: tls
    protocol: https
    port: 8443
    tls: { certificates: [{ cert: /etc/tls/site.pem, key: /etc/tls/site-key.pem }] }
`);
  const redacted = redactConfig(config, PLUGIN_SCHEMAS) as any;
  assert.equal(redacted.listeners[0].tls.certificates[0].key, REDACTED);
  assert.equal(redacted.listeners[0].tls.certificates[0].cert, '/etc/tls/site.pem');
});
