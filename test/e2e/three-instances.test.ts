// Issue 20, point 5: three gateways behind Debian's HAProxy (TCP mode, GET /readyz checks, PROXY protocol v2), one
// redis-server. A Redis rate limit holds across the three; a target registered in Redis reaches all three and leaves
// all three after its TTL; SIGKILL of one under load fails at most the requests in flight on it; SIGTERM of one
// (with shutdown.acceptGrace) fails none. Each case has its own fixture (test/helpers/three-instances.ts), so cases
// for other shared state can be added as further test() blocks. A target put in etcd on a lease reaches all three
// and leaves all three once etcd ends the lease. A config pushed to etcd (all three started from the key) is run by
// all three with no failed request under load; an invalid one is refused by push and, written past it, by all three.
// ACME with storage: redis: one instance orders from pebble, all three serve the same certificate.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { after, test } from 'node:test';
import { freePorts, served as certificate } from '../helpers/acme.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { startPebble } from '../helpers/pebble.ts';
import { request, startEchoBackend, type Backend } from '../helpers/servers.ts';
import {
  configHash,
  get,
  hashOf,
  instanceConfig,
  listsTarget,
  push,
  registrar,
  served,
  startThreeInstances,
  steadyLoad,
  type ThreeInstances,
} from '../helpers/three-instances.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

async function echo(name: string): Promise<Backend> {
  const b = await startEchoBackend(name);
  backends.push(b);
  return b;
}

/** Six requests through HAProxy: each instance must serve two (its round robin); the backends' names that answered. */
async function sixAcrossAll(fx: ThreeInstances): Promise<string[]> {
  const before = await Promise.all(fx.instances.map(served));
  const names: string[] = [];
  for (let i = 0; i < 6; i++) names.push(JSON.parse((await get(fx.port, '/')).body).name);
  const afterwards = await Promise.all(fx.instances.map(served));
  assert.deepEqual(
    afterwards.map((n, i) => n - before[i]!),
    [2, 2, 2],
  );
  return names;
}

const staticBody = (backend: string, plugins = '') => `
upstreams: { app: { targets: [{ url: "${backend}" }] } }
routes: [{ name: all, match: { path: / }, upstream: app${plugins} }]
`;

test('a 100 requests/minute limit in Redis holds across the three instances, keyed by the client HAProxy names', async () => {
  const b = await echo('app');
  const fx = await startThreeInstances(
    staticBody(b.url, ', plugins: [{ rate-limit: { limits: [{ requests: 100, per: 1m }], key: ip, store: redis } }]'),
  );
  try {
    // One client address (127.0.0.2, not HAProxy's 127.0.0.1): the PROXY v2 header names it to every instance.
    // 130 requests, 10 clients at a time (each a new connection), so they take well under a second.
    const started = performance.now();
    const statuses: number[] = [];
    const client = async () => {
      for (let i = 0; i < 13; i++) statuses.push((await get(fx.port, '/', { localAddress: '127.0.0.2' })).status);
    };
    await Promise.all(Array.from({ length: 10 }, client));
    const elapsed = performance.now() - started;
    const allowed = statuses.filter((s) => s === 200).length;
    console.log(`rate limit across three instances: ${allowed} of 130 allowed in ${Math.round(elapsed)} ms`);
    // GCRA: the whole 100 at once, then one more every 600 ms: nothing in the 100 is refused, nothing more allowed.
    assert.ok(allowed >= 100, `${allowed} allowed`);
    assert.ok(allowed <= 100 + Math.ceil(elapsed / 600), `${allowed} allowed in ${elapsed} ms`);
    assert.deepEqual(new Set(statuses), new Set([200, 429]));
    // Round robin: every instance answered a share (each its own counters if the limit were not shared).
    for (const i of fx.instances) assert.ok((await served(i)) >= 30, `instance ${i.web} served ${await served(i)}`);
    // The client address reaches the upstream, and another client has its own allowance.
    const other = await get(fx.port, '/', { localAddress: '127.0.0.3' });
    assert.equal(other.status, 200);
    assert.match(JSON.parse(other.body).headers['x-forwarded-for'], /(^|, )127\.0\.0\.3$/);
  } finally {
    await fx.stop();
  }
});

test('a target registered in Redis is used by all three, and dropped by all three once its TTL ends', async () => {
  const ledger = await echo('ledger');
  // A second instance of the service stays registered: the pool never empties (that would wait out emptyGrace).
  const steady = await echo('ledger-steady');
  const fx = await startThreeInstances(`
discovery:
  redis: { prefix: "turnpike:services:" }  # uses stores.redis; services register with a TTL
upstreams:
  ledger:   { discover: { redis: { service: ledger } } }
routes: [{ match: { path: / }, upstream: ledger }]
`);
  let reg: ChildProcess | null = null;
  const stay = registrar(fx.instances[2]!.gw.file, '--service', 'ledger', '--url', steady.url, '--ttl', '10s');
  try {
    await until(
      async () => (await Promise.all(fx.instances.map((i) => listsTarget(i, 'ledger', steady.url)))).every(Boolean),
      'all three to list the steady target',
      10_000,
      20,
    );
    const all = async (want: boolean) =>
      (await Promise.all(fx.instances.map((i) => listsTarget(i, 'ledger', ledger.url)))).every((has) => has === want);
    const r = registrar(fx.instances[0]!.gw.file, '--service', 'ledger', '--url', ledger.url, '--ttl', '2s');
    reg = r;
    await until(() => all(true), 'all three to list the registered target', 10_000, 20);
    const seen = performance.now() - (await r.registered);
    // Round robin over fresh connections (HAProxy) and over the two targets (each instance).
    const names = await sixAcrossAll(fx);
    assert.deepEqual(names.toSorted(), [
      'ledger',
      'ledger',
      'ledger',
      'ledger-steady',
      'ledger-steady',
      'ledger-steady',
    ]);

    // Killed outright, the registrar cannot leave: the key lives out its 2 s TTL, then every instance drops it.
    const killed = performance.now();
    reg.kill('SIGKILL');
    await once(reg, 'exit');
    await until(() => all(false), 'all three to drop the expired target', 15_000, 20);
    const dropped = performance.now() - killed;
    for (let i = 0; i < 3; i++) assert.equal(JSON.parse((await get(fx.port, '/')).body).name, 'ledger-steady');
    console.log(
      `Redis discovery across three instances: listed by all three ${Math.round(seen)} ms after its key was written; ` +
        `dropped by all three ${Math.round(dropped)} ms after the registrar's SIGKILL (its 2 s TTL, renewed every 667 ms, ended 1.3 to 2 s after the kill)`,
    );
  } finally {
    for (const child of [reg, stay]) if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await fx.stop();
  }
});

test('a target put in etcd on a lease is used by all three, and dropped by all three once the lease ends', async () => {
  const payments = await echo('payments');
  // A second instance of the service, on no lease: the pool never empties (that would wait out emptyGrace).
  const steady = await echo('payments-steady');
  const etcd = await startEtcd();
  const prefix = '/turnpike/services/';
  await etcd.put(`${prefix}payments/steady`, JSON.stringify({ url: steady.url }));
  const fx = await startThreeInstances(`
discovery:
  etcd: { endpoints: ["${etcd.url}"], prefix: ${prefix} }
upstreams:
  payments: { discover: { etcd: { service: payments } } }
routes: [{ match: { path: / }, upstream: payments }]
`);
  const watch = new AbortController();
  try {
    const all = async (url: string, want: boolean) =>
      (await Promise.all(fx.instances.map((i) => listsTarget(i, 'payments', url)))).every((has) => has === want);
    await until(() => all(steady.url, true), 'all three to list the steady target', 10_000, 20);
    // A 2 s lease never kept alive: the registrant died right after registering.
    const key = `${prefix}payments/pay-1`;
    const written = performance.now();
    const revision = await etcd.putWithLease(key, JSON.stringify({ url: payments.url }), 2);
    // When etcd deletes the key (the lease ended), by a watch on it from the put on.
    const deleted = etcd.client.nextEvents(key, false, revision + 1, watch.signal).then((events) => {
      assert.equal(events[0]!.type, 'DELETE');
      return performance.now();
    });
    await until(() => all(payments.url, true), 'all three to list the target on the lease', 10_000, 20);
    const seen = performance.now() - written;
    const names = await sixAcrossAll(fx);
    assert.deepEqual(names.toSorted(), [
      'payments',
      'payments',
      'payments',
      'payments-steady',
      'payments-steady',
      'payments-steady',
    ]);

    await until(() => all(payments.url, false), 'all three to drop the target whose lease ended', 15_000, 20);
    const dropped = performance.now();
    const expired = await deleted;
    for (let i = 0; i < 3; i++) assert.equal(JSON.parse((await get(fx.port, '/')).body).name, 'payments-steady');
    console.log(
      `etcd discovery across three instances: listed by all three ${Math.round(seen)} ms after the put; ` +
        `the 2 s lease ended (key deleted) ${Math.round(expired - written)} ms after the put, ` +
        `dropped by all three ${Math.round(dropped - expired)} ms after that`,
    );
  } finally {
    watch.abort();
    await fx.stop();
    await etcd.stop();
  }
});

test('a config pushed to etcd reaches all three with no failed request; an invalid one is refused by all three', async () => {
  const b = await echo('app');
  const etcd = await startEtcd();
  const key = '/turnpike/config';
  const url = `etcd://127.0.0.1:${etcd.port}${key}`;
  const body = (marker: string) => `
accessLog: { enabled: false }
upstreams: { app: { targets: [{ url: "${b.url}" }] } }
routes:
  - { name: all, match: { path: / }, upstream: app, plugins: [{ headers: { response: { set: { x-marker: "${marker}" } } } }] }
`;
  const published = async (text: string) => {
    const r = await push(text, url);
    assert.equal(r.code, 0, r.stderr);
  };
  // All three start from the key, which `turnpike push` filled first.
  const fx = await startThreeInstances(body('v1'), { store: { url, publish: published } });
  const text = (marker: string) => instanceConfig(fx.redis.url, body(marker));
  const hashes = () => Promise.all(fx.instances.map(configHash));
  const markers = async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(String((await get(fx.port, '/')).headers['x-marker']));
    return seen;
  };
  const load = steadyLoad(fx.port, { fresh: 3, keepAlive: 3 });
  const watch = new AbortController();
  try {
    assert.deepEqual(await hashes(), Array(3).fill(hashOf(text('v1'))));
    await load.more(50);
    // When the key changed, by a watch on it (the push's own Node start is not part of the propagation).
    const { revision } = await etcd.client.range(key, false);
    const written = etcd.client.nextEvents(key, false, revision + 1, watch.signal).then(() => performance.now());
    await published(text('v2'));
    const want = Array(3).fill(hashOf(text('v2')));
    await until(async () => (await hashes()).join() === want.join(), 'all three to run the pushed config', 10_000, 20);
    const changed = performance.now() - (await written);
    assert.deepEqual(await markers(), Array(6).fill('v2'));
    await load.more(50);
    const result = await load.stop();
    console.log(
      `config pushed to etcd: run by all three ${Math.round(changed)} ms after the key changed; load through it: ${JSON.stringify(result)}`,
    );
    assert.deepEqual(result.errors, []);
    assert.equal(result.failed, 0);
    assert.equal(result.bad, 0);

    // An invalid file: `turnpike push` refuses it, the key is untouched.
    const invalid = text('v3').replace('port: 0,', 'port: nope,');
    const refused = await push(invalid, url);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /listeners\[0\]\.port/);
    assert.equal((await etcd.client.get(key)).value, text('v2'));
    // Written to the key past push, every instance refuses it at its key path and keeps the last good one.
    const failures = (i: number) =>
      fx.instances[i]!.gw.logLines.filter((l) => l.includes('"msg":"config reload failed')).length;
    await etcd.put(key, invalid);
    await until(() => [0, 1, 2].every((i) => failures(i) > 0), 'all three to refuse the invalid config', 10_000, 20);
    for (const i of [0, 1, 2]) {
      const line = fx.instances[i]!.gw.logLines.findLast((l) => l.includes('"msg":"config reload failed'))!;
      assert.match(JSON.parse(line).error, /listeners\[0\]\.port/);
    }
    assert.deepEqual(await hashes(), want);
    assert.deepEqual(await markers(), Array(6).fill('v2'));
  } finally {
    watch.abort();
    await load.stop();
    await fx.stop();
    await etcd.stop();
  }
});

test('ACME with storage: redis: one of the three orders, all three serve the same certificate', async () => {
  // pebble sends every http-01 validation to one fixed port: instance 0's plain http listener. Whichever instance
  // holds the Redis lock and orders, the token it published in Redis is answered there.
  const ports = await freePorts(6);
  const http = ports.slice(0, 3);
  const https = ports.slice(3);
  const pebble = await startPebble({ httpPort: http[0]!, tlsPort: https[0]! });
  const fx = await startThreeInstances(
    `
accessLog: { enabled: false }
routes: [{ name: all, match: { path: / }, respond: { status: 200, body: "ok" } }]
`,
    {
      listeners: (i) => [
        `{ name: plain, protocol: http, address: 127.0.0.1, port: ${http[i]} }`,
        `{ name: websecure, protocol: https, address: 127.0.0.1, port: ${https[i]}, acme: { directory: "${pebble.directory}", ca: "${pebble.caFile}", email: ops@example.com, domains: [api.example.test, www.example.test], challenge: http-01, storage: redis } }`,
      ],
    },
  ).catch(async (err: unknown) => {
    await pebble.stop();
    throw err;
  });
  try {
    const root = await pebble.root();
    const serials: string[] = [];
    for (const [i, port] of https.entries()) {
      const name = i === 1 ? 'www.example.test' : 'api.example.test';
      const s = await until(
        () => certificate(port, name, root).then((c) => (c.authorized ? c.serial : false)),
        `instance ${i} to serve the certificate pebble issued`,
        30_000,
        50,
      );
      serials.push(s);
    }
    assert.deepEqual(serials, Array(3).fill(serials[0]));
    assert.equal(pebble.issued(), 1, 'one order for the three');
    const ordered = fx.instances.map(
      (i) => i.gw.logLines.filter((l) => l.includes('"msg":"ACME: certificate issued')).length,
    );
    assert.equal(
      ordered.reduce((a, b) => a + b),
      1,
      `exactly one instance ordered: ${ordered}`,
    );
    console.log(
      `ACME across three instances: instance ${ordered.indexOf(1)} ordered; serial ${serials[0]} served by all three`,
    );
  } finally {
    await fx.stop();
    await pebble.stop();
  }
});

test('SIGKILL of one instance under load fails at most the requests in flight on it; the other two serve the rest', async () => {
  const b = await echo('app');
  const fx = await startThreeInstances(staticBody(b.url));
  const clients = 4;
  const load = steadyLoad(fx.port, { fresh: clients, keepAlive: 0 });
  try {
    await load.more(60);
    const victim = fx.instances[1]!;
    victim.gw.child.kill('SIGKILL');
    await fx.haproxy.untilStates({ s0: 'UP', s1: 'DOWN', s2: 'UP' });
    const failedAtDown = load.result.failed;
    await load.more(100);
    const result = await load.stop();
    console.log(`SIGKILL under load: ${JSON.stringify(result)}`);
    // Each client has one request in flight at a time: at most `clients` were on the killed instance.
    assert.ok(result.failed <= clients, JSON.stringify(result));
    assert.equal(result.failed, failedAtDown, 'no failure once HAProxy marked it down');
    assert.equal(result.bad, 0);
  } finally {
    await load.stop();
    await fx.stop();
  }
});

test('SIGTERM of one instance under load (shutdown.acceptGrace: 1s) fails no request', async () => {
  const b = await echo('app');
  const fx = await startThreeInstances(staticBody(b.url), { acceptGrace: '1s' });
  // Fresh connections and kept-alive ones: these are told Connection: close by the drain and reconnect elsewhere.
  // Without the grace (acceptGrace: 0s) this load saw a connection the kernel accepted in the last moment reset in
  // about one SIGTERM of four (HAProxy retries refused connects, not resets); with it, none in many runs.
  const load = steadyLoad(fx.port, { fresh: 6, keepAlive: 3 });
  try {
    await load.more(60);
    const victim = fx.instances[1]!;
    const before = await served(victim);
    const exit = victim.gw.stop();
    await fx.haproxy.untilStates({ s0: 'UP', s1: 'DOWN', s2: 'UP' });
    // Out of HAProxy's rotation, still in the grace: its kept-alive clients are still served.
    await load.more(30);
    assert.ok((await served(victim)) > before, 'the stopping instance serves through the grace');
    assert.equal(await exit, 0);
    await load.more(100);
    const result = await load.stop();
    console.log(`SIGTERM under load: ${JSON.stringify(result)}`);
    assert.deepEqual(result.errors, []);
    assert.equal(result.failed, 0);
    assert.equal(result.bad, 0);
  } finally {
    await load.stop();
    await fx.stop();
  }
});
