// `node bench/three-instances.ts [ROUNDS]`: the figures of the README's "Running several instances", ROUNDS times
// (default 5) on the fixture of test/e2e/three-instances.test.ts (three gateways behind HAProxy in TCP mode, one
// redis-server): how soon a target registered in Redis is listed by all three and dropped by all three after its
// registrar's SIGKILL, and how many requests a SIGKILL and a SIGTERM of one instance fail under load, with
// shutdown.acceptGrace 1s and 0s. Prints a Markdown table (median and worst of the rounds).
import { once } from 'node:events';
import { startEchoBackend } from '../test/helpers/servers.ts';
import {
  listsTarget,
  registrar,
  startThreeInstances,
  steadyLoad,
  type ThreeInstances,
} from '../test/helpers/three-instances.ts';
import { until } from '../test/helpers/wait.ts';

const rounds = Number(process.argv[2] ?? 5);
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

const samples: Record<string, number[]> = {};
const add = (name: string, value: number) => (samples[name] ??= []).push(value);
for (let i = 0; i < rounds; i++) {
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
