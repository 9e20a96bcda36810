// The memory cache with workers: each worker holds its own store, and a PURGE reaching one worker empties
// every worker's (relayed by the primary).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnGateway, type GatewayProcess, untilWorkersStarted } from '../helpers/process.ts';
import { request, startBackend, type Backend } from '../helpers/servers.ts';

let backend: Backend;
let gw: GatewayProcess;

before(async () => {
  backend = await startBackend((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' }).end(`body of ${req.url}`);
  });
  // Port 0: the cluster primary hands connections to the workers in turn, so fresh connections reach both.
  gw = await spawnGateway(`
workers: 2
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { b: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: items
    match: { path: / }
    upstream: b
    plugins: [{ cache: { purge: { allow: [127.0.0.1/32] } } }]
`);
  await untilWorkersStarted(gw);
});

after(async () => {
  await gw.stop();
  await backend.close();
});

const fresh = (path: string, method = 'GET') => request(gw.port(), path, { method, agent: false });
const seen = (path: string) => backend.requests.filter((r) => r.url === path).length;

test('a PURGE reaching one worker removes the entry from every worker', async () => {
  for (let i = 0; i < 6; i++) assert.equal((await fresh('/item')).status, 200);
  assert.equal(seen('/item'), 2, 'each worker filled its own store once');
  const purged = await fresh('/item', 'PURGE');
  assert.equal(purged.status, 200);
  assert.deepEqual(JSON.parse(purged.body), { purged: 2 });
  const after = await Promise.all(Array.from({ length: 6 }, () => fresh('/item')));
  assert.ok(after.every((r) => r.status === 200));
  assert.equal(seen('/item'), 4, 'both workers missed once after the purge');
});

test('a prefix PURGE is relayed too', async () => {
  for (const p of ['/p/1', '/p/2']) for (let i = 0; i < 4; i++) await fresh(p);
  const purged = await fresh('/p/*', 'PURGE');
  assert.deepEqual(JSON.parse(purged.body), { purged: 4 });
});
