// stores.redis with tls (a CA and the name to verify), an ACL username and a password from the environment,
// against a redis-server that listens only on a TLS port and knows the user: limits count exactly there; a wrong
// password is a store error (onStoreError: deny answers 503).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { TestPki, type Ca } from '../helpers/certs.ts';
import { freePort } from '../helpers/ports.ts';
import { assertProblem } from '../helpers/problem.ts';
import { spawnRedis } from '../helpers/redis.ts';
import { request, startGatewayYaml } from '../helpers/servers.ts';

type Gateway = Awaited<ReturnType<typeof startGatewayYaml>>;

const PASSWORD = 'tp-redis-password-0123';

describe('stores.redis over TLS with a username and password', () => {
  let pki: TestPki;
  let ca: Ca;
  let dir: string;
  let port: number;
  let redis: ChildProcess;
  const gateways: Gateway[] = [];

  before(async () => {
    pki = new TestPki();
    ca = pki.ca('Redis Test CA');
    const server = pki.server(ca, { names: ['redis.test'] });
    dir = mkdtempSync(join(tmpdir(), 'turnpike-redis-tls-'));
    port = await freePort(); // redis-server cannot report a port 0 it bound
    redis = await spawnRedis(
      [
        ...['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...['--dir', dir, '--tls-cert-file', server.certPath, '--tls-key-file', server.keyPath],
        ...['--tls-ca-cert-file', ca.certPath, '--tls-auth-clients', 'no'],
        // The default user is off: only `turnpike` with its password gets in.
        ...['--user', 'default', 'off', '--user', 'turnpike', 'on', `>${PASSWORD}`, '~*', '&*', '+@all'],
      ],
      'Ready to accept',
    );
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    redis?.kill('SIGKILL');
    pki?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function gateway(passwordVar: string): Promise<Gateway> {
    const g = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
stores:
  redis:
    url: "redis://127.0.0.1:${port}"
    username: turnpike
    password: "\${${passwordVar}}"
    tls: { ca: "${ca.certPath}", serverName: redis.test }
routes:
  - name: api
    match: { path: / }
    respond: { body: ok }
    plugins: [{ rate-limit: { limits: [{ requests: 3, per: 1m }], key: route, store: redis, onStoreError: deny } }]
`);
    gateways.push(g);
    return g;
  }

  test('limits count in the TLS Redis as the ACL user; a wrong password is a store error', async () => {
    process.env.TP_TEST_REDIS_PASSWORD = PASSWORD;
    process.env.TP_TEST_REDIS_WRONG = 'not-the-password';
    const good = await gateway('TP_TEST_REDIS_PASSWORD');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(good.port(), '/')).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);

    const client = new Redis({
      port,
      host: '127.0.0.1',
      username: 'turnpike',
      password: PASSWORD,
      tls: { ca: ca.cert, servername: 'redis.test' },
      maxRetriesPerRequest: 0,
    });
    try {
      assert.deepEqual(await client.keys('turnpike:rl:*'), ['turnpike:rl:api|3/60000|route|route']);
    } finally {
      client.disconnect();
    }

    const wrong = await gateway('TP_TEST_REDIS_WRONG');
    assertProblem(await request(wrong.port(), '/'), 503, 'TP_STORE_UNAVAILABLE');
  });
});
