// Redis discovery in a running gateway, against a real redis-server: `turnpike register` (the CLI, as a child
// process) makes an instance a target without a reload, SIGTERM removes it at once (a clean leave), SIGKILL leaves
// it to its TTL; a Redis that stops answering keeps the last set (and is counted); the admin API says where each
// target came from, and registers and removes instances itself. Every wait is on a discovery round's event.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { nextEvent, type StreamEvent } from '../helpers/events.ts';
import { CLI } from '../helpers/process.ts';
import { startRedisServer } from '../helpers/redis.ts';
import { json, request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

const config = (redis: string, stores = `stores: { redis: { url: "${redis}" } }`) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
discovery:
  redis: { prefix: "turnpike:services:" }  # uses stores.redis; services register with a TTL
upstreams:
  ledger:   { discover: { redis: { service: ledger }, emptyGrace: 0s } }
routes: [{ name: all, match: { path: / }, upstream: ledger }]
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
${stores}
`;

/** `turnpike register` as a child process (the bin users run). */
function registrar(file: string, ...args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'register', '--config', file, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return { child, stderr: () => stderr };
}

async function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}

function rounds(gw: Gateway) {
  return (what: string, match: (e: StreamEvent) => boolean, timeoutMs = 10_000) =>
    nextEvent('turnpike:discovery', gw.runtime.gateway, match, what, timeoutMs);
}
const has = (url: string) => (e: StreamEvent) => e.outcome === 'resolved' && (e.targets as string[]).includes(url);
const lacks = (url: string) => (e: StreamEvent) => e.outcome !== 'error' && !(e.targets as string[]).includes(url);

test('turnpike register makes a target without a reload; SIGTERM removes it, SIGKILL leaves it to its TTL; a stopped Redis keeps the set', async () => {
  const a = await startEchoBackend('a');
  const b = await startEchoBackend('b');
  backends.push(a, b);
  const redis = await startRedisServer();
  const gw = await startGatewayYaml(config(redis.url));
  const round = rounds(gw);
  const targets = () => gw.runtime.current.upstreams.get('ledger')!.targets.map((t) => t.url);
  const children: ChildProcess[] = [];
  try {
    const found = round('a registered', has(a.url));
    const ra = registrar(gw.file, '--service', 'ledger', '--url', a.url, '--ttl', '10s');
    children.push(ra.child);
    await found;
    assert.equal(json(await request(gw.port(), '/')).name, 'a');
    const listed = JSON.parse((await request(gw.admin!.port, '/api/upstreams')).body) as {
      upstreams: { name: string; targets: { url: string; source: string }[] }[];
    };
    assert.deepEqual(
      listed.upstreams.find((u) => u.name === 'ledger')!.targets.map((t) => [t.url, t.source]),
      [[a.url, 'redis service ledger']],
    );

    // b with a 2 s TTL, its refresher then killed outright: b stays until its TTL ends, then leaves.
    const foundB = round('b registered', has(b.url));
    const rb = registrar(gw.file, '--service', 'ledger', '--url', b.url, '--ttl', '2s', '--weight', '3');
    children.push(rb.child);
    await foundB;
    assert.equal(gw.runtime.current.upstreams.get('ledger')!.targets.find((t) => t.url === b.url)!.weight, 3);
    const expired = round('b expired', lacks(b.url));
    rb.child.kill('SIGKILL');
    await expired;
    assert.deepEqual(targets(), [a.url]);

    // SIGTERM: a clean leave, the key is deleted at once (well before its 10 s TTL), and the registrar exits 0.
    const left = round('a deregistered', lacks(a.url), 5000);
    ra.child.kill('SIGTERM');
    assert.deepEqual(await exitOf(ra.child), { code: 0, signal: null }, ra.stderr());
    await left;
    assert.deepEqual(targets(), []);

    // Registered again, then Redis goes away: the round fails, the last set stays in use, the failure is counted.
    const again = round('a registered again', has(a.url));
    const ra2 = registrar(gw.file, '--service', 'ledger', '--url', a.url, '--ttl', '10s');
    children.push(ra2.child);
    await again;
    const failed = round('a failing round', (e) => e.outcome === 'error');
    redis.process.kill('SIGKILL');
    await failed;
    assert.deepEqual(targets(), [a.url]);
    assert.equal(json(await request(gw.port(), '/')).name, 'a');
    const scraped = (await request(gw.admin!.port, '/metrics')).body;
    assert.match(scraped, /^turnpike_discovery_errors_total\{upstream="ledger"\} [1-9]\d*$/m);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await gw.stop();
    await redis.stop();
  }
});

test('the admin API registers and removes instances; without stores.redis it says so', async () => {
  const c = await startEchoBackend('c');
  backends.push(c);
  const redis = await startRedisServer();
  const gw = await startGatewayYaml(config(redis.url));
  const round = rounds(gw);
  const admin = (method: string, path: string, body?: object) =>
    request(gw.admin!.port, path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
  try {
    const found = round('c registered', has(c.url));
    const put = await admin('PUT', '/api/discovery/redis/ledger', { url: c.url, ttl: '30s', weight: 2 });
    assert.equal(put.status, 200, put.body);
    assert.deepEqual(json(put), {
      service: 'ledger',
      url: c.url,
      key: `{turnpike:services:ledger}:${c.url}`,
      ttlMs: 30_000,
      weight: 2,
    });
    await found;
    assert.equal(json(await request(gw.port(), '/')).name, 'c');

    const gone = round('c removed', lacks(c.url));
    const del = await admin('DELETE', `/api/discovery/redis/ledger?url=${encodeURIComponent(c.url)}`);
    assert.equal(del.status, 200, del.body);
    assert.equal(json(del).removed, true);
    await gone;

    assert.equal((await admin('PUT', '/api/discovery/redis/ledger', { url: `${c.url}/x`, ttl: '30s' })).status, 400);
    assert.equal((await admin('PUT', '/api/discovery/redis/led*ger', { url: c.url, ttl: '30s' })).status, 400);
    assert.equal((await admin('DELETE', '/api/discovery/redis/ledger')).status, 400);
    const doc = JSON.parse((await admin('GET', '/api/openapi.json')).body) as { paths: Record<string, object> };
    assert.deepEqual(Object.keys(doc.paths['/api/discovery/redis/{service}']!).sort(), ['delete', 'put']);
  } finally {
    await gw.stop();
    await redis.stop();
  }
  const plain = await startGatewayYaml(
    config('', '').replace(
      'discover: { redis: { service: ledger }, emptyGrace: 0s }',
      `targets: [{ url: "${c.url}" }]`,
    ),
  );
  try {
    const r = await request(plain.admin!.port, '/api/discovery/redis/ledger', {
      method: 'PUT',
      body: JSON.stringify({ url: c.url, ttl: '10s' }),
    });
    assert.equal(r.status, 501);
    assert.equal(json(r).code, 'TP_ADMIN_UNSUPPORTED');
  } finally {
    await plain.stop();
  }
});

test('turnpike register refuses a config without stores.redis (exit 2) and a URL that is not an origin', async () => {
  const file = join(tempDir(), 'turnpike.yaml');
  writeFileSync(
    file,
    `listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9" }] } }
routes: [{ match: { path: / }, upstream: u }]
`,
  );
  const none = registrar(file, '--service', 'ledger', '--url', 'http://127.0.0.1:8080', '--ttl', '10s');
  assert.deepEqual(await exitOf(none.child), { code: 2, signal: null });
  assert.match(none.stderr(), /no stores\.redis/);
  const bad = registrar(file, '--service', 'ledger', '--url', 'http://127.0.0.1:8080/api', '--ttl', '10s');
  assert.notEqual((await exitOf(bad.child)).code, 0);
  assert.match(bad.stderr(), /origin/);
});
