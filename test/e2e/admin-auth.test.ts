// Who reaches the admin listener: probes without a token, /api/* with one of admin.auth.tokens (401
// problem+json otherwise), everything without a token when there are no tokens (loopback only), and nothing of
// it through a public listener. Mutating calls write an audit line naming the caller by a hash of its token.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/index.ts';
import { ConfigError } from '../../src/config/loader.ts';
import { startGateway, type Gateway } from '../../src/runtime/gateway.ts';
import { assertProblem } from '../helpers/problem.ts';
import { json, request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const OTHER = 'second-token-0123456789abcdef';

let echo: Backend;
before(async () => {
  echo = await startEchoBackend('app');
});
after(() => echo.close());

const yaml = (admin: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app }]
${admin}
`;

describe('with tokens', () => {
  let gw: Gateway;
  const lines: any[] = [];
  before(async () => {
    const file = join(tempDir(), 'turnpike.yaml');
    writeFileSync(
      file,
      yaml(
        `admin: { address: 127.0.0.1, port: 0, auth: { tokens: ["${TOKEN}", "${OTHER}"] } }\naccessLog: { enabled: false }`,
      ),
    );
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
        done();
      },
    });
    gw = await startGateway({ configFile: file, log: pino({ level: 'info' }, sink) });
  });
  after(() => gw.stop());
  const admin = () => gw.admin!.port;

  test('probes need no token', async () => {
    assert.equal((await request(admin(), '/healthz')).status, 200);
    assert.equal((await request(admin(), '/readyz')).status, 200);
  });

  test('a missing or wrong token gets 401 problem+json with WWW-Authenticate: Bearer', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Basic ${TOKEN}` },
    ]) {
      const r = await request(admin(), '/api/config', { headers });
      assertProblem(r, 401, 'TP_ADMIN_UNAUTHORIZED', [TOKEN, OTHER]);
      assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    }
    // A mutating call without a token changes nothing.
    const r = await request(admin(), '/api/log-level', { method: 'PUT', body: '{"level":"error"}' });
    assertProblem(r, 401, 'TP_ADMIN_UNAUTHORIZED');
    assert.equal(gw.log.level, 'info');
  });

  test('any one of the tokens is accepted', async () => {
    for (const t of [TOKEN, OTHER]) {
      const r = await request(admin(), '/api/routes', { headers: { authorization: `Bearer ${t}` } });
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).routes[0].name, 'all');
    }
  });

  test('a mutating call writes an audit line: action, a short hash of the token, the address', async () => {
    const r = await request(admin(), '/api/log-level', {
      method: 'PUT',
      headers: { authorization: `Bearer ${OTHER}`, 'content-type': 'application/json' },
      body: '{"level":"warn"}',
    });
    assert.equal(r.status, 200, r.body);
    const audit = lines.find((l) => l.audit?.action === 'log.level');
    assert.ok(audit, JSON.stringify(lines));
    assert.equal(audit.audit.caller, createHash('sha256').update(OTHER).digest('hex').slice(0, 12));
    assert.equal(audit.audit.address, '127.0.0.1');
    assert.equal(audit.audit.to, 'warn');
    assert.ok(!JSON.stringify(lines).includes(OTHER), 'the token itself is never logged');
    gw.log.level = 'info';
    const target = `127.0.0.1:${echo.port}`;
    for (const action of ['drain', 'undrain']) {
      const r = await request(admin(), `/api/upstreams/app/targets/${target}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(r.status, 200, r.body);
      const line = lines.find((l) => l.audit?.action === `upstream.${action}`);
      assert.deepEqual(
        { caller: line?.audit.caller, upstream: line?.audit.upstream, target: line?.audit.target },
        { caller: createHash('sha256').update(TOKEN).digest('hex').slice(0, 12), upstream: 'app', target },
      );
    }
  });

  test('unknown paths get 404 and wrong methods 405, as problem+json', async () => {
    assertProblem(await request(admin(), '/api/nothing'), 404, 'TP_ADMIN_NOT_FOUND');
    const r = await request(admin(), '/api/reload', { headers: { authorization: `Bearer ${TOKEN}` } });
    assertProblem(r, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.equal(r.headers.allow, 'POST');
  });

  test('admin requests never reach a route, and a public listener never serves the admin API', async () => {
    const pub = await request(gw.port(), '/api/config', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(pub.status, 200);
    assert.equal(json(pub).name, 'app', 'the public listener routes /api/config to the backend');
    assert.equal((await request(gw.port(), '/healthz')).body.includes('"status"'), false);
    assert.notEqual(gw.admin!.port, gw.port());
  });
});

test('without tokens the admin API on loopback needs none', async () => {
  const gw = await startGatewayYaml(yaml('admin: { port: 0 }'));
  try {
    assert.equal(gw.admin!.address, '127.0.0.1');
    const r = await request(gw.admin!.port, '/api/upstreams');
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r).upstreams[0].name, 'app');
  } finally {
    await gw.stop();
  }
});

test('no admin key, no admin listener', async () => {
  const gw = await startGatewayYaml(yaml(''));
  try {
    assert.equal(gw.admin, null);
  } finally {
    await gw.stop();
  }
});

describe('config errors', () => {
  const problems = (text: string): string[] => {
    try {
      parseConfig(text);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.code} ${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  };
  const base = 'listeners: [{ name: web, protocol: http, port: 8080 }]\n';

  test('the issue example validates verbatim', () => {
    process.env.ADMIN_TOKEN = TOKEN;
    assert.deepEqual(
      problems(`${base}admin:
  address: 127.0.0.1              # the admin listener; never on a public listener
  port: 9901
  auth:
    tokens: ["\${ADMIN_TOKEN}"]    # Bearer tokens for /api/* and the dashboard
`),
      [],
    );
  });

  test('an address other than loopback needs tokens', () => {
    const p = problems(`${base}admin: { address: 0.0.0.0 }\n`);
    assert.equal(p.length, 1);
    assert.match(p[0]!, /^TP_CONFIG_INVALID admin\.address: .*needs admin\.auth\.tokens/);
    assert.deepEqual(problems(`${base}admin: { address: "::1" }\n`), []);
    assert.deepEqual(problems(`${base}admin: { address: 0.0.0.0, auth: { tokens: ["${TOKEN}"] } }\n`), []);
  });

  test('the admin port must not be a listener port; the error names both', () => {
    const p = problems(`${base}admin: { port: 8080 }\n`);
    assert.equal(p.length, 1);
    assert.match(p[0]!, /^TP_CONFIG_DUPLICATE admin\.port: admin\.port 8080 is also the port of listener "web"/);
  });

  test('short tokens and unknown keys are refused', () => {
    assert.match(problems(`${base}admin: { auth: { tokens: [short] } }\n`)[0]!, /at least 16 characters/);
    assert.match(problems(`${base}admin: { prot: 1 }\n`)[0]!, /^TP_CONFIG_UNKNOWN_KEY/);
  });
});
