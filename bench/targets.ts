// The catalogue of targets and how each is started, checked and addressed. Every target proxies to the same
// backend; `direct` is the backend itself. All are started once, up front, and stay up for the whole run.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Child } from './children.ts';
import { startHAProxy } from './haproxy.ts';
import { httpGet } from './net.ts';
import { CACHED_CONTROL, CACHED_PREFIX, startNginxProxy } from './nginx.ts';
import { PEER_NEEDS, startPeer } from './peers.ts';
import type { ToolName } from './system.ts';
import { startRedis, type RedisServer } from './redis.ts';
import {
  GATEWAY_PREFIX,
  gatewayHeaders,
  gatewayProblem,
  startTurnpike,
  startTurnpikeManyRoutes,
  startTurnpikeTracing,
  startTurnpikeMetrics,
  startTurnpikeWorkers,
  type Build,
  type GatewayKind,
  type Turnpike,
} from './turnpike.ts';

export const BASELINE = 'nginx-1w';

export interface TargetInfo {
  readonly name: string;
  /** What it is and how it is configured, one line for the report. */
  readonly describe: string;
  /** System programs it needs. */
  readonly tools: readonly ToolName[];
  /** npm peer packages it needs (from bench/peers.ts). */
  readonly peers: readonly string[];
  /** Whether it writes an access log during the run. */
  readonly accessLog: boolean;
  /** For the gateway cases: the plugin stack, named in the report's line on its cost over the bare route. */
  readonly stack?: string;
  /** How that line reads: `cost` (the default), a stack held to the performance budget; `gain`, one that should
   *  beat the bare route (the cache, answering every request itself). */
  readonly expect?: 'cost' | 'gain';
  /** A cost held to its own budget rather than the gateway stack's (tracing: 2 % req/s). */
  readonly budget?: { readonly maxThroughputLoss: number; readonly maxP99Ratio: number; readonly perCore?: boolean };
  /** The row the cost line compares with, when not the bare `turnpike` (the metrics case: turnpike-gateway). */
  readonly versus?: string;
}

const OWN: readonly TargetInfo[] = [
  { name: 'direct', describe: 'the backend itself, no proxy: the ceiling', tools: [], peers: [], accessLog: false },
  {
    name: 'nginx-1w',
    describe: 'nginx proxy_pass, worker_processes 1, upstream keepalive 64, access_log buffer=64k flush=1s',
    tools: ['nginx'],
    peers: [],
    accessLog: true,
  },
  {
    name: 'nginx-auto',
    describe: 'as nginx-1w with worker_processes auto (one per core)',
    tools: ['nginx'],
    peers: [],
    accessLog: true,
  },
  {
    name: 'haproxy',
    describe: 'HAProxy mode http, nbthread 1, http-reuse always, option http-keep-alive, no log',
    tools: ['haproxy'],
    peers: [],
    accessLog: false,
  },
  {
    name: 'turnpike',
    describe: 'Turnpike, one process, bare route, access log to a file',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-workers',
    describe: 'Turnpike with `workers: auto`, bare route, access log to a file',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-gateway',
    describe:
      'the gateway case: a Turnpike route under /api with headers (both ways) + rewrite + key-auth (x-api-key, sent by wrk) + ' +
      'rate-limit (memory store, key consumer, a limit of 10^8/h that never trips), access log (same process as turnpike)',
    stack: 'headers + rewrite + key-auth + rate-limit(memory)',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-gateway-redis',
    describe:
      'as turnpike-gateway under /apir, with jwt (HS256 static key, issuer + audience checked; one token minted at start, ' +
      'sent by wrk as Authorization: Bearer) instead of key-auth, and rate-limit on the Redis store (onStoreError: deny) of a ' +
      'local redis-server (no persistence) started by the bench (same process as turnpike)',
    stack: 'headers + rewrite + jwt + rate-limit(redis)',
    tools: ['redis-server'],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-gateway-metrics',
    describe:
      'as turnpike-gateway (same route and plugins) in a Turnpike process of its own with `metrics: { enabled: true }` ' +
      '(GET /metrics on an admin listener, not scraped during the run): the cost of metrics on the gateway route',
    stack: 'metrics on',
    versus: 'turnpike-gateway',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-cache',
    describe:
      `a Turnpike route under ${CACHED_PREFIX} with the cache plugin alone (memory store) in front of the same backend bodies, ` +
      `which the backend sends there (only there) with Cache-Control: ${CACHED_CONTROL}: after the first request every request is a hit ` +
      '(checked: X-Cache: HIT); compare with turnpike, the same body fetched from the backend (same process as turnpike)',
    stack: 'cache (memory), every request a hit',
    expect: 'gain',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-tracing',
    describe:
      'as turnpike, with tracing at sampleRatio 0.1 (the default) exporting OTLP/HTTP JSON to a sink in the bench process',
    stack: 'tracing at sampleRatio 0.1, OTLP export',
    budget: { maxThroughputLoss: 0.02, maxP99Ratio: 1.25, perCore: true },
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'turnpike-10k-routes',
    describe: 'as turnpike, with 10,000 other routes (exact and wildcard hosts, params, methods) in the table',
    tools: [],
    peers: [],
    accessLog: true,
  },
  {
    name: 'fast-gateway',
    describe: 'fast-gateway (restana + fast-proxy-lite), one route prefix /, no log',
    tools: [],
    peers: PEER_NEEDS['fast-gateway']!,
    accessLog: false,
  },
  {
    name: 'fastify-proxy',
    describe: "@fastify/http-proxy on fastify, reply-from's default undici client, logger off",
    tools: [],
    peers: PEER_NEEDS['fastify-proxy']!,
    accessLog: false,
  },
  {
    name: 'http-proxy',
    describe: 'http-proxy createProxyServer, http.Agent keepAlive maxSockets 128, no log',
    tools: [],
    peers: PEER_NEEDS['http-proxy']!,
    accessLog: false,
  },
  {
    name: 'node-limit',
    describe: 'node:http + undici Pool(128): pool.request then body.pipe(res), nothing else',
    tools: [],
    peers: [],
    accessLog: false,
  },
];

/** Compare mode (`--compare BASE`): `<target>@base` is the same route served by the base revision's build, from a
 *  second single Turnpike process with the same config, measured in the same rounds as this build's. */
export const BASE_SUFFIX = '@base';
/** The targets that get an `@base` twin: the routes of the single Turnpike process. */
export const TWINNED: readonly string[] = ['turnpike', 'turnpike-gateway', 'turnpike-gateway-redis', 'turnpike-cache'];
export const isBase = (name: string) => name.endsWith(BASE_SUFFIX);
/** `turnpike-gateway@base` → `turnpike-gateway`. */
export const headOf = (name: string) => (isBase(name) ? name.slice(0, -BASE_SUFFIX.length) : name);

const twin = (t: TargetInfo): TargetInfo => ({
  ...t,
  name: `${t.name}${BASE_SUFFIX}`,
  describe: `${t.name} run by the base revision's build (--compare; its config is named above)${t.name === 'turnpike' ? '' : ', same process as turnpike@base'}`,
});

/** Each twin right after its own target, so the tables show them side by side. */
export const TARGETS: readonly TargetInfo[] = OWN.flatMap((t) => (TWINNED.includes(t.name) ? [t, twin(t)] : [t]));

/** Old names still accepted by --targets. */
export const ALIASES: Readonly<Record<string, string>> = {
  gateway: 'turnpike-gateway',
  nginx: 'nginx-1w',
  cache: 'turnpike-cache',
};

export interface Running {
  readonly name: string;
  /** The process whose tree (workers included) is measured for CPU and memory. */
  readonly child: Child;
  /** URL prefix: the body name (`100b`, `64k`) is appended. */
  readonly base: string;
  /** Access log to truncate between windows. */
  readonly accessLog?: string;
  /** Request headers wrk sends with every request (the gateway cases' credentials). */
  readonly headers?: Readonly<Record<string, string>>;
  /** A helper process the target relies on (the gateway-redis case's redis-server): its CPU is sampled apart. */
  readonly sidecar?: Child;
}

export interface StartContext {
  readonly tmp: string;
  readonly backendPort: number;
  readonly backend: Child;
  /** The builds the single Turnpike processes run: `head` (this checkout's when omitted) and, for the `@base`
   *  targets, `base`. */
  readonly builds?: { readonly head?: Build; readonly base?: Build };
}

export interface Started {
  readonly running: Map<string, Running>;
  readonly skipped: Map<string, string>;
  /** Helper processes started for the targets (redis-server), for the caller to stop at the end. */
  readonly helpers: readonly Child[];
}

/** Targets whose process serves another target too (direct is the backend). */
const SHARED = new Set(['direct', ...TWINNED, ...TWINNED.map((t) => `${t}${BASE_SUFFIX}`)]);

export const GATEWAY_TARGETS: Readonly<Record<string, GatewayKind>> = {
  'turnpike-gateway': 'memory',
  'turnpike-gateway-redis': 'redis',
  'turnpike-cache': 'cache',
};

const BODY_SIZES: Readonly<Record<string, number>> = { '100b': 100, '64k': 65536 };

/** GETs every body once (with the target's headers) so we never benchmark a 404, a truncated body or a plugin
 *  that did not apply; on the gateway cases also without credentials, which must get a 401; on the cache case
 *  twice, the second answer a HIT. */
async function check(r: Running): Promise<void> {
  for (const [body, size] of Object.entries(BODY_SIZES)) {
    const kind = GATEWAY_TARGETS[headOf(r.name)] ?? (r.name === 'turnpike-gateway-metrics' ? 'memory' : undefined);
    if (kind) {
      const problem = await gatewayProblem(kind, `${r.base}${body}`, r.headers ?? {}, size);
      if (problem) throw new Error(problem);
      continue;
    }
    const res = await httpGet(`${r.base}${body}`, 5000, r.headers);
    if (res.status !== 200) throw new Error(`GET /${body} answered ${res.status}`);
    if (res.bodyLength !== size) throw new Error(`GET /${body} returned ${res.bodyLength} bytes, expected ${size}`);
  }
}

/** Starts the named targets concurrently; a target that fails to start is skipped with a one-line reason. */
export async function startTargets(
  names: readonly string[],
  ctx: StartContext,
  preSkipped: ReadonlyMap<string, string>,
): Promise<Started> {
  const running = new Map<string, Running>();
  const skipped = new Map(preSkipped);
  const dirFor = (name: string) => {
    const d = join(ctx.tmp, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const wanted = (name: string) => names.includes(name) && !skipped.has(name);
  const helpers: Child[] = [];
  const REDIS_CASES = ['turnpike-gateway-redis', `turnpike-gateway-redis${BASE_SUFFIX}`];
  // The gateway-redis case needs its redis-server up before Turnpike reads the config that points at it.
  let redis: Promise<RedisServer | undefined> | undefined;
  const redisServer = () =>
    (redis ??= REDIS_CASES.some(wanted)
      ? startRedis(dirFor('redis')).then(
          (r) => (helpers.push(r.child), r),
          (err: unknown) => (REDIS_CASES.forEach((n) => skipped.set(n, (err as Error).message)), undefined),
        )
      : Promise.resolve(undefined));
  // One single Turnpike process per build: this checkout's, and the base revision's for the `@base` targets.
  const singles = new Map<'head' | 'base', Promise<Turnpike>>();
  const turnpike = (side: 'head' | 'base') => {
    let p = singles.get(side);
    if (!p) {
      const suffix = side === 'base' ? BASE_SUFFIX : '';
      const build = ctx.builds?.[side];
      p =
        side === 'base' && !build
          ? Promise.reject(new Error('no base build (the @base targets need --compare BASE)'))
          : redisServer().then((r) => {
              const gateways = Object.entries(GATEWAY_TARGETS)
                .filter(([name, kind]) => wanted(`${name}${suffix}`) && (kind !== 'redis' || r !== undefined))
                .map(([, kind]) => kind);
              return startTurnpike(dirFor(`turnpike${suffix}`), ctx.backendPort, { gateways, redisUrl: r?.url, build });
            });
      singles.set(side, p);
    }
    return p;
  };
  const local = (port: number) => `http://127.0.0.1:${port}/`;
  const gateway = async (name: string) => {
    const kind = GATEWAY_TARGETS[headOf(name)]!;
    const r = await redisServer();
    if (kind === 'redis' && r === undefined) throw new Error(skipped.get(name) ?? 'redis-server did not start');
    const t = await turnpike(isBase(name) ? 'base' : 'head');
    const why = t.gatewaySkipped.get(kind);
    if (why) throw new Error(why);
    return {
      child: t.child,
      base: `${local(t.port)}${GATEWAY_PREFIX[kind].slice(1)}/`,
      accessLog: t.accessLog,
      headers: await gatewayHeaders(kind),
      ...(kind === 'redis' && r ? { sidecar: r.child } : {}),
    };
  };

  const starters: Record<string, () => Promise<Omit<Running, 'name'>>> = {
    direct: async () => ({ child: ctx.backend, base: local(ctx.backendPort) }),
    'nginx-1w': async () => {
      const n = await startNginxProxy(dirFor('nginx-1w'), ctx.backendPort, '1');
      return { child: n.child, base: local(n.port), accessLog: n.accessLog };
    },
    'nginx-auto': async () => {
      const n = await startNginxProxy(dirFor('nginx-auto'), ctx.backendPort, 'auto');
      return { child: n.child, base: local(n.port), accessLog: n.accessLog };
    },
    haproxy: async () => {
      const h = await startHAProxy(dirFor('haproxy'), ctx.backendPort);
      return { child: h.child, base: local(h.port) };
    },
    ...Object.fromEntries(
      (['head', 'base'] as const).map((side) => [
        `turnpike${side === 'base' ? BASE_SUFFIX : ''}`,
        async () => {
          const t = await turnpike(side);
          return { child: t.child, base: local(t.port), accessLog: t.accessLog };
        },
      ]),
    ),
    ...Object.fromEntries(
      Object.keys(GATEWAY_TARGETS)
        .flatMap((n) => [n, `${n}${BASE_SUFFIX}`])
        .map((n) => [n, () => gateway(n)]),
    ),
    'turnpike-gateway-metrics': async () => {
      const t = await startTurnpikeMetrics(dirFor('turnpike-gateway-metrics'), ctx.backendPort);
      return {
        child: t.child,
        base: `${local(t.port)}${GATEWAY_PREFIX.memory.slice(1)}/`,
        accessLog: t.accessLog,
        headers: await gatewayHeaders('memory'),
      };
    },
    'turnpike-10k-routes': async () => {
      const t = await startTurnpikeManyRoutes(dirFor('turnpike-10k-routes'), ctx.backendPort);
      return { child: t.child, base: local(t.port), accessLog: t.accessLog };
    },
    'turnpike-tracing': async () => {
      const t = await startTurnpikeTracing(dirFor('turnpike-tracing'), ctx.backendPort);
      return { child: t.child, base: local(t.port), accessLog: t.accessLog };
    },
    'turnpike-workers': async () => {
      const t = await startTurnpikeWorkers(dirFor('turnpike-workers'), ctx.backendPort);
      return { child: t.child, base: local(t.port), accessLog: t.accessLog };
    },
  };
  for (const peer of Object.keys(PEER_NEEDS)) {
    starters[peer] = async () => {
      const p = await startPeer(peer, ctx.backendPort);
      return { child: p.child, base: local(p.port) };
    };
  }

  await Promise.all(
    names
      .filter((n) => !skipped.has(n))
      .map(async (name) => {
        let r: Running | undefined;
        try {
          r = { name, ...(await starters[name]!()) };
          await check(r);
          running.set(name, r);
        } catch (err) {
          skipped.set(name, (err as Error).message.split('\n')[0]!.slice(0, 400));
          // Started but answering wrongly: stop it, unless another target shares the process.
          if (r && !SHARED.has(name)) await r.child.stop(1000);
        }
      }),
  );
  // Nothing left to use the redis-server: stop it now rather than let it idle beside the measured processes.
  if (!REDIS_CASES.some((n) => running.has(n))) {
    await Promise.all(helpers.map((h) => h.stop(1000)));
    helpers.length = 0;
  }
  return { running, skipped, helpers };
}
