// Discovery with `workers: 2`, on a real `turnpike start` process: the primary resolves (once per instance) and
// sends the set to both workers, which never ask the DNS themselves; the primary's active health checks probe the
// discovered targets and their verdicts reach both workers; the admin API says where each target came from, and
// the instance's /metrics counts the primary's discovery failures.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { spawnGateway, untilWorkersStarted, type GatewayProcess } from '../helpers/process.ts';
import { json, request, startBackend, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const SRV = '_http._tcp.app.service.internal';
const TOKEN = 'discovery-workers-token-0123456789';
let dns: DnsServer;
let gw: GatewayProcess;
const backends: Backend[] = [];
/** What /healthz answers, by backend name. */
const healthz = new Map<string, number>();

function named(name: string): Promise<Backend> {
  healthz.set(name, 200);
  return startBackend((req, res) => {
    if (req.url === '/healthz') res.writeHead(healthz.get(name)!).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
}

const port = (b: Backend) => Number(new URL(b.url).port);

/** `n` requests, each on its own connection: the primary deals connections to the workers in turn. */
async function answerers(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(gw.port('web'), '/', { headers: { connection: 'close' } });
    out.push(r.status === 200 ? r.body : String(r.status));
  }
  return out;
}

before(async () => {
  backends.push(await named('a'), await named('b'));
  dns = await startDnsServer();
  dns.set(SRV, [{ type: 'SRV', target: 'a.internal', port: port(backends[0]!) }]);
  dns.set('a.internal', [{ type: 'A', address: '127.0.0.1', ttl: 1 }]);
  dns.set('b.internal', [{ type: 'A', address: '127.0.0.1', ttl: 1 }]);
  gw = await spawnGateway(
    `
workers: 2
log: { level: info }
discovery: { dns: { servers: ["${dns.address}"], minRefresh: 1s } }
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    discover: { dns: { srv: ${SRV} } }
    healthCheck: { active: { path: /healthz, interval: 1s, unhealthyThreshold: 1, healthyThreshold: 1 } }
routes: [{ name: all, match: { path: / }, upstream: app }]
admin: { port: 0, auth: { tokens: ["${TOKEN}"] } }
metrics: {}
`,
    { listeners: 2 },
  );
  await untilWorkersStarted(gw);
});

after(async () => {
  assert.equal(await gw.stop(), 0);
  await dns.close();
  await Promise.all(backends.map((b) => b.close()));
});

const admin = (path: string) => request(gw.port('admin'), path, { headers: { authorization: `Bearer ${TOKEN}` } });

test('the primary resolves and both workers use its set; the workers never ask the DNS', async () => {
  await until(async () => (await answerers(4)).every((n) => n === 'a'), 'both workers route to a');
  dns.set(SRV, [
    { type: 'SRV', target: 'a.internal', port: port(backends[0]!) },
    { type: 'SRV', target: 'b.internal', port: port(backends[1]!) },
  ]);
  await until(async () => new Set(await answerers(8)).size === 2, 'both workers route to a and b');
  const logged = gw.logLines
    .map((l) => JSON.parse(l) as { msg?: string; pid?: number })
    .filter((e) => e.msg === 'discovered targets');
  assert.ok(logged.length >= 2);
  assert.deepEqual(new Set(logged.map((e) => e.pid)), new Set([gw.pid]), 'only the primary runs discovery');
  const listed = json(await admin('/api/upstreams')).upstreams[0].targets as { url: string; source: string }[];
  assert.deepEqual(listed.map((t) => t.source).sort(), [`dns srv ${SRV}`, `dns srv ${SRV}`]);
});

test("the primary's health checks probe the discovered targets; both workers take its verdicts", async () => {
  await until(() => backends[1]!.requests.some((r) => r.url === '/healthz'), 'a probe of the discovered b');
  healthz.set('b', 503);
  await until(async () => (await answerers(8)).every((n) => n === 'a'), 'b out of rotation in both workers');
  healthz.set('b', 200);
  await until(async () => (await answerers(8)).includes('b'), 'b back in rotation');
});

test("the instance's /metrics counts the primary's discovery failures", async () => {
  dns.set(SRV, 'SERVFAIL');
  await until(
    async () => /^turnpike_discovery_errors_total\{upstream="app"\} [1-9]/m.test((await admin('/metrics')).body),
    'a failed round counted',
  );
  // The last good set stays in use.
  assert.deepEqual(new Set(await answerers(8)), new Set(['a', 'b']));
});
