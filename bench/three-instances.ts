// `node bench/three-instances.ts [ROUNDS]`: the figures of the README's "Running several instances", ROUNDS times
// (default 5) on the fixture of test/e2e/three-instances.test.ts (three gateways behind HAProxy in TCP mode, one
// redis-server): how soon a target registered in Redis is listed by all three and dropped by all three after its
// registrar's SIGKILL, and how many requests a SIGKILL and a SIGTERM of one instance fail under load, with
// shutdown.acceptGrace 1s and 0s; how soon a target put in etcd on a 2 s lease is listed by all three and dropped
// after etcd deletes it, and how soon a config pushed to etcd is run by all three (started from the key). Prints a
// Markdown table (median and worst of the rounds). `node bench/three-instances.ts ROUNDS etcd` measures only etcd's.
import { once } from 'node:events';
import { startEtcd } from '../test/helpers/etcd.ts';
import { startEchoBackend } from '../test/helpers/servers.ts';
import {
  configHash,
  hashOf,
  instanceConfig,
  listsTarget,
  push,
  registrar,
  startThreeInstances,
  steadyLoad,
  type ThreeInstances,
} from '../test/helpers/three-instances.ts';
import { until } from '../test/helpers/wait.ts';

const rounds = Number(process.argv[2] ?? 5);
const onlyEtcd = process.argv[3] === 'etcd';
const app = await startEchoBackend('app');
const staticBody = `
upstreams: { app: { targets: [{ url: "${app.url}" }] } }
routes: [{ match: { path: / }, upstream: app }]
`;
const discoveryBody = `
discovery: { redis: { prefix: "turnpike:services:" } }
upstreams: { ledger: { discover: { redis: { service: ledger } } } }
routes: [{ match: { path: / }, upstream: ledger }]
`;

async function registration(): Promise<{ seen: number; dropped: number }> {
  const fx = await startThreeInstances(discoveryBody);
  const stay = registrar(fx.instances[0]!.gw.file, '--service', 'ledger', '--url', app.url, '--ttl', '10s');
  const target = 'http://127.0.0.1:9';
  const reg = registrar(fx.instances[0]!.gw.file, '--service', 'ledger', '--url', target, '--ttl', '2s');
  try {
    const all = async (want: boolean) =>
      (await Promise.all(fx.instances.map((i) => listsTarget(i, 'ledger', target)))).every((has) => has === want);
    await until(() => all(true), 'all three to list it', 10_000, 10);
    const seen = performance.now() - (await reg.registered);
    const killed = performance.now();
    reg.kill('SIGKILL');
    await once(reg, 'exit');
    await until(() => all(false), 'all three to drop it', 15_000, 10);
    return { seen, dropped: performance.now() - killed };
  } finally {
    for (const c of [reg, stay]) if (c.exitCode === null) c.kill('SIGKILL');
    await fx.stop();
  }
}

async function stopOne(signal: 'SIGKILL' | 'SIGTERM', acceptGrace: string): Promise<{ failed: number; all: number }> {
  const fx: ThreeInstances = await startThreeInstances(staticBody, { acceptGrace });
  const load = steadyLoad(fx.port, { fresh: 6, keepAlive: 3 });
  try {
    await load.more(60);
    const victim = fx.instances[1]!;
    if (signal === 'SIGKILL') victim.gw.child.kill('SIGKILL');
    const exit = signal === 'SIGTERM' ? victim.gw.stop() : Promise.resolve(null);
    await fx.haproxy.untilStates({ s0: 'UP', s1: 'DOWN', s2: 'UP' });
    await exit;
    await load.more(100);
    const r = await load.stop();
    return { failed: r.failed + r.bad, all: r.ok + r.bad + r.failed };
  } finally {
    await load.stop();
    await fx.stop();
  }
}

async function etcdTarget(): Promise<{ seen: number; dropped: number }> {
  const etcd = await startEtcd();
  const prefix = '/turnpike/services/';
  await etcd.put(`${prefix}payments/steady`, JSON.stringify({ url: app.url }));
  const fx = await startThreeInstances(`
discovery: { etcd: { endpoints: ["${etcd.url}"], prefix: ${prefix} } }
upstreams: { payments: { discover: { etcd: { service: payments } } } }
routes: [{ match: { path: / }, upstream: payments }]
`);
  const watch = new AbortController();
  const target = 'http://127.0.0.1:9';
  const key = `${prefix}payments/pay-1`;
  try {
    const all = async (want: boolean) =>
      (await Promise.all(fx.instances.map((i) => listsTarget(i, 'payments', target)))).every((has) => has === want);
    await until(() => all(false), 'all three to start', 10_000, 10);
    const written = performance.now();
    const revision = await etcd.putWithLease(key, JSON.stringify({ url: target }), 2);
    const deleted = etcd.client.nextEvents(key, false, revision + 1, watch.signal).then(() => performance.now());
    await until(() => all(true), 'all three to list it', 10_000, 10);
    const seen = performance.now() - written;
    await until(() => all(false), 'all three to drop it', 15_000, 10);
    return { seen, dropped: performance.now() - (await deleted) };
  } finally {
    watch.abort();
    await fx.stop();
    await etcd.stop();
  }
}

async function configPush(): Promise<number> {
  const etcd = await startEtcd();
  const key = '/turnpike/config';
  const url = `etcd://127.0.0.1:${etcd.port}${key}`;
  const body = (marker: string) =>
    `${staticBody}
accessLog: { enabled: false }
`.replace(
      'upstream: app }',
      `upstream: app, plugins: [{ headers: { response: { set: { x-marker: "${marker}" } } } }] }`,
    );
  const publish = async (text: string) => {
    const r = await push(text, url);
    if (r.code !== 0) throw new Error(r.stderr);
  };
  const fx = await startThreeInstances(body('v1'), { store: { url, publish } });
  const watch = new AbortController();
  try {
    const { revision } = await etcd.client.range(key, false);
    const written = etcd.client.nextEvents(key, false, revision + 1, watch.signal).then(() => performance.now());
    const text = instanceConfig(fx.redis.url, body('v2'));
    await publish(text);
    await until(
      async () => (await Promise.all(fx.instances.map(configHash))).every((h) => h === hashOf(text)),
      'all three to run it',
      10_000,
      10,
    );
    return performance.now() - (await written);
  } finally {
    watch.abort();
    await fx.stop();
    await etcd.stop();
  }
}

const samples: Record<string, number[]> = {};
const add = (name: string, value: number) => (samples[name] ??= []).push(value);
for (let i = 0; i < rounds; i++) {
  const e = await etcdTarget();
  add('target put in etcd on a 2 s lease: listed by all three (ms after the put)', e.seen);
  add('... dropped by all three (ms after etcd deleted the key, its lease ended)', e.dropped);
  add('config pushed to etcd: run by all three (ms after the key changed)', await configPush());
  if (onlyEtcd) {
    process.stderr.write(`round ${i + 1} of ${rounds} done\n`);
    continue;
  }
  const r = await registration();
  add('registered target listed by all three (ms after its key was written)', r.seen);
  add("registered target dropped by all three (ms after its registrar's SIGKILL; 2 s TTL)", r.dropped);
  for (const [signal, grace] of [
    ['SIGKILL', '0s'],
    ['SIGTERM', '0s'],
    ['SIGTERM', '1s'],
  ] as const) {
    const s = await stopOne(signal, grace);
    add(`${signal} of one instance, acceptGrace ${grace}: failed requests (9 clients, ~250 requests)`, s.failed);
  }
  process.stderr.write(`round ${i + 1} of ${rounds} done\n`);
}
await app.close();

const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`| measure (${rounds} rounds) | median | worst |\n|---|---|---|`);
for (const [name, xs] of Object.entries(samples))
  console.log(`| ${name} | ${Math.round(median(xs))} | ${Math.round(Math.max(...xs))} |`);
