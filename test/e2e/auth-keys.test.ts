// Consumers with API keys and Basic credentials, authorization by group, and what reaches the upstream.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { hashPassword } from '../../src/auth/password.ts';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { assertProblem } from '../helpers/problem.ts';
import { CLI } from '../helpers/process.ts';
import { json, request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const MOBILE_KEY = 'mobile-key-0123456789abcdef';
const OPS_KEY = 'ops-key-0123456789abcdef0123';

let echo: Backend;
let scryptHash: string;
before(async () => {
  echo = await startEchoBackend('orders');
  scryptHash = await hashPassword('s3cret!');
});
after(() => echo.close());

const config = (extra = '') => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { orders: { targets: [{ url: "${echo.url}" }] } }
consumers:
  - name: mobile
    groups: [partners]
    credentials:
      apiKeys: ["${MOBILE_KEY}"]
  - name: ops
    groups: [staff, admins]
    credentials:
      apiKeys: ["sha256:${createHashHex(OPS_KEY)}"]
      basic: { username: alice, passwordHash: "${scryptHash}" }
  - name: legacy
    credentials:
      basic: { username: bob, passwordHash: "${bcrypt.hashSync('hunter2', 4)}" }
${extra}
`;

function createHashHex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('key-auth', () => {
  test('a key in the header identifies the consumer; the backend gets its name and groups, never a client-sent copy', async () => {
    const gw = await startGatewayYaml(
      config(`routes:
  - name: orders
    match: { path: /orders }
    upstream: orders
    plugins:
      - key-auth: { header: x-api-key }
      - allow: { groups: [partners] }`),
    );
    try {
      const ok = await request(gw.port(), '/orders', {
        headers: { 'x-api-key': MOBILE_KEY, 'x-consumer-name': 'admin', 'x-consumer-groups': 'admins' },
      });
      assert.equal(ok.status, 200);
      const seen = json(ok).headers;
      assert.equal(seen['x-consumer-name'], 'mobile');
      assert.equal(seen['x-consumer-groups'], 'partners');
      const missing = await request(gw.port(), '/orders');
      assertProblem(missing, 401, 'TP_UNAUTHENTICATED');
      assert.equal(missing.headers['www-authenticate'], 'Key realm="turnpike", header="x-api-key"');
      assert.equal(
        (await request(gw.port(), '/orders', { headers: { 'x-api-key': 'wrong-key-0123456789abcdef' } })).status,
        401,
      );
      // A known consumer outside the allowed groups (its key stored as a SHA-256 digest) is forbidden.
      const forbidden = await request(gw.port(), '/orders', { headers: { 'x-api-key': OPS_KEY } });
      assert.equal(forbidden.status, 403);
      assert.equal(json(forbidden).code, 'TP_FORBIDDEN');
    } finally {
      await gw.stop();
    }
  });

  test('without authentication, client-sent consumer headers are removed too', async () => {
    const gw = await startGatewayYaml(config(`routes: [{ name: open, match: { path: / }, upstream: orders }]`));
    try {
      const r = await request(gw.port(), '/', {
        headers: { 'x-consumer-name': 'mobile', 'x-consumer-groups': 'partners' },
      });
      assert.equal(json(r).headers['x-consumer-name'], undefined);
      assert.equal(json(r).headers['x-consumer-groups'], undefined);
    } finally {
      await gw.stop();
    }
  });

  test('a key in the query works, is redacted in the access log and removed upstream with hideCredentials', async () => {
    const log = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(
      config(`accessLog: { enabled: true, output: ${log} }
routes:
  - name: q
    match: { path: / }
    upstream: orders
    plugins: [{ key-auth: { query: apikey, hideCredentials: true } }]`),
    );
    try {
      const r = await request(gw.port(), `/items?a=1&apikey=${MOBILE_KEY}&b=2`);
      assert.equal(r.status, 200);
      assert.equal(json(r).url, '/items?a=1&b=2');
    } finally {
      await gw.stop();
    }
    const text = readFileSync(log, 'utf8');
    assert.ok(!text.includes(MOBILE_KEY), 'the key is not in the access log');
    assert.match(text, /"path":"\/items\?a=1&apikey=\[REDACTED\]&b=2"/);
  });

  test('a query key is read by the shared query rule: first occurrence, decoded name; every occurrence is redacted and removed', async () => {
    const log = join(tempDir(), 'access.log');
    const gw = await startGatewayYaml(
      config(`accessLog: { enabled: true, output: ${log} }
routes:
  - name: q
    match: { path: / }
    upstream: orders
    plugins: [{ key-auth: { query: api_key, hideCredentials: true } }]`),
    );
    try {
      const encoded = await request(gw.port(), `/items?api%5Fkey=${MOBILE_KEY}&b=2`);
      assert.equal(encoded.status, 200, 'a name compares decoded, as routing compares it');
      assert.equal(json(encoded).url, '/items?b=2');
      const first = await request(gw.port(), `/items?api_key=${OPS_KEY}&api_key=wrong`);
      assert.equal(first.status, 200);
      assert.equal(json(first).headers['x-consumer-name'], 'ops');
      assert.equal(json(first).url, '/items', 'every occurrence is removed upstream');
      assert.equal(
        (await request(gw.port(), `/items?api_key=wrong&api_key=${OPS_KEY}`)).status,
        401,
        'the first occurrence is the key (NGINX $arg_NAME, Envoy)',
      );
      assert.equal(
        (await request(gw.port(), `/items?api_key&api_key=${OPS_KEY}`)).status,
        401,
        'a first occurrence without = is an empty key',
      );
    } finally {
      await gw.stop();
    }
    const text = readFileSync(log, 'utf8');
    assert.ok(!text.includes(MOBILE_KEY) && !text.includes(OPS_KEY), 'no key is in the access log');
    assert.match(text, /"path":"\/items\?api_key=\[REDACTED\]&api_key=\[REDACTED\]"/);
  });
});

describe('basic-auth', () => {
  test('scrypt and bcrypt hashes verify; a wrong password gets 401 with a Basic challenge', async () => {
    const gw = await startGatewayYaml(
      config(`routes:
  - name: b
    match: { path: / }
    upstream: orders
    plugins: [{ basic-auth: { hideCredentials: true } }]`),
    );
    try {
      const alice = await request(gw.port(), '/', { headers: { authorization: basic('alice', 's3cret!') } });
      assert.equal(alice.status, 200);
      assert.equal(json(alice).headers['x-consumer-name'], 'ops');
      assert.equal(json(alice).headers.authorization, undefined, 'hideCredentials strips the credential');
      const bob = await request(gw.port(), '/', { headers: { authorization: basic('bob', 'hunter2') } });
      assert.equal(json(bob).headers['x-consumer-name'], 'legacy');
      const wrong = await request(gw.port(), '/', { headers: { authorization: basic('alice', 'nope') } });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers['www-authenticate'], 'Basic realm="turnpike", charset="UTF-8"');
      // A verified credential is cached: many requests cost one hash (they are fast).
      const started = performance.now();
      for (let i = 0; i < 20; i++)
        assert.equal(
          (await request(gw.port(), '/', { headers: { authorization: basic('alice', 's3cret!') } })).status,
          200,
        );
      assert.ok(performance.now() - started < 2000);
    } finally {
      await gw.stop();
    }
  });

  test('several authentication plugins on a route: any one accepting is enough; none gives both challenges', async () => {
    const gw = await startGatewayYaml(
      config(`routes:
  - name: both
    match: { path: / }
    upstream: orders
    plugins: [{ key-auth: {} }, { basic-auth: {} }]`),
    );
    try {
      assert.equal((await request(gw.port(), '/', { headers: { 'x-api-key': MOBILE_KEY } })).status, 200);
      assert.equal(
        (await request(gw.port(), '/', { headers: { authorization: basic('alice', 's3cret!') } })).status,
        200,
      );
      const none = await request(gw.port(), '/');
      assert.equal(none.status, 401);
      assert.deepEqual(
        none.headers['www-authenticate'],
        'Key realm="turnpike", header="x-api-key", Basic realm="turnpike", charset="UTF-8"',
      );
    } finally {
      await gw.stop();
    }
  });
});

describe('turnpike hash-password', () => {
  test('prints a scrypt hash of the password read from standard input, which basic-auth accepts', async () => {
    const out = execFileSync(process.execPath, [...NODE_FLAGS, CLI, 'hash-password'], { input: 'pa55word\n' })
      .toString()
      .trim();
    assert.match(out, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { orders: { targets: [{ url: "${echo.url}" }] } }
consumers: [{ name: c, credentials: { basic: { username: carol, passwordHash: "${out}" } } }]
routes: [{ name: b, match: { path: / }, upstream: orders, plugins: [{ basic-auth: {} }] }]
`);
    try {
      assert.equal(
        (await request(gw.port(), '/', { headers: { authorization: basic('carol', 'pa55word') } })).status,
        200,
      );
    } finally {
      await gw.stop();
    }
  });
});
