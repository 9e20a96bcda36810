// ACME with `storage: redis` shared by two gateways (two instances of one site): one takes the lock and orders,
// the other waits and serves the same certificate from Redis. pebble validates http-01 on the first gateway's port
// only, so when the second one orders, the token it published is answered by the first one from Redis.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect } from 'node:tls';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { startPebble } from '../helpers/pebble.ts';
import { freePorts } from '../helpers/acme.ts';
import { startRedisServer } from '../helpers/redis.ts';
import { request, startGatewayYaml } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

function servedSerial(port: number, servername: string, ca: string): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false }, () => {
      resolve(socket.authorized ? socket.getPeerCertificate().serialNumber : false);
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** A logger whose lines are kept, to see which gateway ordered. */
function recordingLog() {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), lines };
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

test('storage: redis: two gateways, one order, the same certificate served by both', async () => {
  const redis = await startRedisServer();
  cleanup.push(() => redis.stop());
  const [httpA, httpsA, httpB, httpsB] = (await freePorts(4)) as [number, number, number, number];
  const ports = { httpA, httpsA, httpB, httpsB };
  const pebble = await startPebble({ httpPort: ports.httpA, tlsPort: ports.httpsA });
  cleanup.push(() => pebble.stop());
  const yaml = (http: number, https: number) => `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: ${http}, redirectToHttps: true }
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: ${https}
    acme:
      directory: "${pebble.directory}"
      ca: ${pebble.caFile}
      email: ops@example.com
      domains: [api.example.test, www.example.test]
      challenge: http-01
      storage: redis
stores:
  redis: { url: "${redis.url}" }
routes: [{ name: all, match: { path: / }, respond: { status: 200, body: "ok" } }]
`;
  const a = recordingLog();
  const b = recordingLog();
  const gateways: Gateway[] = await Promise.all([
    startGatewayYaml(yaml(ports.httpB, ports.httpsB), { log: b.log }),
    startGatewayYaml(yaml(ports.httpA, ports.httpsA), { log: a.log }),
  ]);
  cleanup.push(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
  });
  const root = await pebble.root();
  const serialA = await until(() => servedSerial(ports.httpsA, 'api.example.test', root), 'A serving it', 30_000);
  const serialB = await until(() => servedSerial(ports.httpsB, 'www.example.test', root), 'B serving it', 30_000);
  assert.equal(serialB, serialA);
  assert.equal(pebble.issued(), 1, 'one order for both');
  const ordered = (lines: string[]) => lines.filter((l) => l.includes('ACME: certificate issued')).length;
  assert.equal(ordered(a.lines) + ordered(b.lines), 1, 'exactly one gateway ordered');
  // Whichever ordered, an http-01 token published in Redis (by another instance) is answered by both, before
  // redirectToHttps; a token nobody published is a 404.
  const client = new Redis(redis.url);
  cleanup.push(async () => void client.disconnect());
  await client.set('turnpike:acme:http-01/tok_en-1', 'tok_en-1.thumbprint');
  for (const port of [ports.httpA, ports.httpB]) {
    const r = await request(port, '/.well-known/acme-challenge/tok_en-1', { headers: { host: 'api.example.test' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'tok_en-1.thumbprint');
    assert.equal((await request(port, '/.well-known/acme-challenge/other')).status, 404);
  }
});
