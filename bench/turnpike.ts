// Starting the Turnpike gateway under test from the built CLI, with a generated config.
import { KEEPALIVE_REQUESTS } from './nginx.ts';
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { stringify } from 'yaml';
import { startChild, type Child } from './children.ts';
import { freePort, httpGet, httpGetText, waitFor200 } from './net.ts';

/** The built CLI, resolved from this file so the bench works from any working directory.
 *  TURNPIKE_BENCH_CLI points the bench at another build (for example an older checkout) to compare. */
export const CLI = process.env.TURNPIKE_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 15_000;

/** A Turnpike build to run: this checkout's dist/ by default; in compare mode (`--compare BASE`) also another
 *  revision's, from its git worktree (bench/worktree.ts). */
export interface Build {
  readonly cli: string;
  /** That revision's own V8 flags (src/runtime/node-flags.ts), so each build runs as its bin would. */
  readonly nodeFlags: readonly string[];
  /** Only for a revision that refuses this bench's config: the config its own bench/turnpike.ts writes. */
  readonly configYaml?: ConfigYaml;
}
export type ConfigYaml = (port: number, backendPort: number, accessLog: string, o: LaunchOptions) => string;

/** The routes served beside the bare one: `memory` is turnpike-gateway (under /api), `redis` is
 *  turnpike-gateway-redis (under /apir), `cache` is turnpike-cache (under /cached). */
export type GatewayKind = 'memory' | 'redis' | 'cache';
export const GATEWAY_PREFIX: Readonly<Record<GatewayKind, string>> = {
  memory: '/api',
  redis: '/apir',
  cache: '/cached',
};

export interface Turnpike {
  readonly child: Child;
  readonly port: number;
  readonly configFile: string;
  readonly accessLog: string;
  /** Why a gateway case cannot be measured, for each one that cannot. */
  readonly gatewaySkipped: ReadonlyMap<GatewayKind, string>;
}

// Fixed credentials: nothing here protects anything, the gateway only has to check them on every request.
const API_KEY = 'turnpike-bench-api-key-0123456789abcdef'; // ≥ 32 characters, like a real key
const JWT_SECRET = 'turnpike-bench-hs256-secret-0123456789abcdef'; // HS256 needs ≥ 32 bytes
const JWT_ISSUER = 'https://issuer.bench.invalid/';
const JWT_AUDIENCE = 'turnpike-bench';
const JWT_SUBJECT = 'bench-jwt-client';
/** Never trips during a run (~28k req/s sustained, a burst of 10^8): the cases measure the cost, not 429s.
 *  (10^8 per minute would be more than one request per microsecond, which the rate-limit schema refuses.) */
const NEVER_TRIPS = { requests: 100_000_000, per: '1h' };

let token: Promise<string> | undefined;
/** One long-lived HS256 token, minted once per bench run, valid for a day. */
function benchToken(): Promise<string> {
  return (token ??= new SignJWT({ scope: 'bench' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setSubject(JWT_SUBJECT)
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(JWT_SECRET)));
}

/** The request headers that authenticate a client on a gateway case (wrk sends them with every request). */
export async function gatewayHeaders(kind: GatewayKind): Promise<Record<string, string>> {
  if (kind === 'cache') return {};
  return kind === 'memory' ? { 'x-api-key': API_KEY } : { authorization: `Bearer ${await benchToken()}` };
}

/** The consumers the gateway routes authenticate: one by API key, one by JWT subject. */
function benchConsumers(): object[] {
  return [
    { name: 'bench-key', credentials: { apiKeys: [API_KEY] } },
    { name: 'bench-jwt', credentials: { jwt: { subject: JWT_SUBJECT } } },
  ];
}

/** The gateway cases: what a real API route carries — header rewriting both ways, a path rewrite, authentication
 *  and a rate limit — with the access log on (as it is for every Turnpike target). Served by the single-process
 *  Turnpike beside the bare route: `memory` (key-auth, rate-limit in memory) under /api, `redis` (jwt HS256,
 *  rate-limit in Redis, denying when Redis fails so a broken store shows up as errors) under /apir. Beside them
 *  `cache`: the cache plugin (memory store) alone under /cached. */
function gatewayRoute(kind: GatewayKind): object {
  const prefix = GATEWAY_PREFIX[kind];
  // No rewrite: the backend serves the same bodies under /cached/, and only there with Cache-Control: max-age.
  if (kind === 'cache')
    return {
      name: 'cached',
      match: { path: { prefix } },
      upstream: 'backend',
      plugins: [{ cache: { store: 'memory' } }],
    };
  const common = [
    { headers: { request: { set: { 'x-gateway': 'turnpike' } }, response: { set: { 'cache-control': 'no-store' } } } },
    { rewrite: { stripPrefix: prefix } },
  ];
  const stack =
    kind === 'memory'
      ? [
          { 'key-auth': { header: 'x-api-key' } },
          { 'rate-limit': { limits: [NEVER_TRIPS], key: 'consumer', store: 'memory' } },
        ]
      : [
          {
            jwt: { keys: [{ secret: JWT_SECRET }], algorithms: ['HS256'], issuer: JWT_ISSUER, audience: JWT_AUDIENCE },
          },
          { 'rate-limit': { limits: [NEVER_TRIPS], key: 'consumer', store: 'redis', onStoreError: 'deny' } },
        ];
  return { name: `gateway-${kind}`, match: { path: { prefix } }, upstream: 'backend', plugins: [...common, ...stack] };
}

/**
 * What is wrong with a gateway case's answers, or undefined when its plugins all apply: without credentials a
 * 401, with them a 200 of the expected size carrying the headers plugin's cache-control and the rate-limit
 * plugin's RateLimit-Policy. So a broken plugin fails the case loudly instead of being measured as fast 401s.
 * The cache case has its own check (cacheProblem).
 */
export async function gatewayProblem(
  kind: GatewayKind,
  url: string,
  headers: Readonly<Record<string, string>>,
  expectedBytes: number,
): Promise<string | undefined> {
  if (kind === 'cache') return cacheProblem(url, expectedBytes);
  try {
    const anonymous = await httpGet(url, 3000);
    if (anonymous.status !== 401)
      return `GET ${url} without credentials answered ${anonymous.status}, expected 401 (authentication plugin not applied)`;
    const res = await httpGet(url, 3000, headers);
    if (res.status !== 200) return `GET ${url} with credentials answered ${res.status}, expected 200`;
    if (res.bodyLength !== expectedBytes)
      return `GET ${url} returned ${res.bodyLength} bytes, expected ${expectedBytes}`;
    if (res.headers['cache-control'] !== 'no-store')
      return `GET ${url} lacks cache-control: no-store (headers plugin not applied)`;
    if (res.headers['ratelimit-policy'] === undefined)
      return `GET ${url} lacks RateLimit-Policy (rate-limit plugin not applied)`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The cache case: a first GET fills the cache (or is a hit already), the next one must be a HIT of the expected
 * size. So a cache that stores nothing is reported as a failed check, not measured as the proxied response.
 */
async function cacheProblem(url: string, expectedBytes: number): Promise<string | undefined> {
  try {
    const first = await httpGet(url, 3000);
    if (first.status !== 200) return `GET ${url} answered ${first.status}, expected 200`;
    if (first.bodyLength !== expectedBytes)
      return `GET ${url} returned ${first.bodyLength} bytes, expected ${expectedBytes}`;
    const xCache = first.headers['x-cache'];
    if (xCache === undefined) return `GET ${url} lacks X-Cache (cache plugin not applied)`;
    if (!/max-age=[1-9]/.test(String(first.headers['cache-control']))) {
      return `GET ${url}: the backend sent cache-control "${first.headers['cache-control'] ?? ''}", expected a max-age (nothing to cache)`;
    }
    const res = await httpGet(url, 3000);
    if (res.status !== 200) return `GET ${url} after a warm-up answered ${res.status}, expected 200`;
    if (res.headers['x-cache'] !== 'HIT')
      return `GET ${url} after a warm-up (${xCache}) answered X-Cache: ${res.headers['x-cache']}, expected HIT`;
    if (res.bodyLength !== expectedBytes)
      return `GET ${url} (a hit) returned ${res.bodyLength} bytes, expected ${expectedBytes}`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export interface LaunchOptions {
  /** The gateway routes to add in front of the bare one. */
  readonly gateways?: readonly GatewayKind[];
  /** `stores.redis.url`, needed by the `redis` gateway. */
  readonly redisUrl?: string;
  /** Top-level `workers:` setting; omitted for the single-process target. */
  readonly workers?: 'auto';
  /** Extra routes in front of the measured one (the route-count case). */
  readonly extraRoutes?: number;
  /** `tracing.otlp.endpoint`: traces on at the default sampleRatio (0.1), exported there (the tracing case). */
  readonly tracing?: string;
  /** Which build to run; this checkout's when omitted. */
  readonly build?: Build;
  /** `metrics: { enabled: true }` on an admin listener at this port (the metrics-cost case). */
  readonly metricsAdminPort?: number;
}

/** `n` routes that do not match the bench's requests, mixing exact hosts, wildcard hosts, params and methods,
 *  so the router's host table and trees are as large as a real config with that many routes. */
export function manyRoutes(n: number): object[] {
  const routes: object[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) routes.push({ match: { host: `h${i}.example.com`, path: `/api/v${i}` }, upstream: 'backend' });
    else if (i % 3 === 1)
      routes.push({ match: { host: `*.t${i}.example.com`, path: `/svc${i}/:id` }, upstream: 'backend' });
    else routes.push({ match: { path: `/p${i}/items`, methods: ['GET'] }, upstream: 'backend' });
  }
  return routes;
}

export function configYaml(port: number, backendPort: number, accessLog: string, o: LaunchOptions): string {
  const gateways = o.gateways ?? [];
  const config = {
    ...(o.workers ? { workers: o.workers } : {}),
    ...(gateways.some((k) => k !== 'cache') ? { consumers: benchConsumers() } : {}),
    ...(gateways.includes('redis') && o.redisUrl ? { stores: { redis: { url: o.redisUrl } } } : {}),
    listeners: [{ name: 'bench', protocol: 'http', address: '127.0.0.1', port }],
    limits: { maxRequestsPerConnection: KEEPALIVE_REQUESTS }, // as nginx's keepalive_requests
    upstreams: { backend: { targets: [{ url: `http://127.0.0.1:${backendPort}` }] } },
    routes: [
      ...manyRoutes(o.extraRoutes ?? 0),
      ...gateways.map(gatewayRoute),
      { name: 'all', match: { path: '/' }, upstream: 'backend' },
    ],
    accessLog: { enabled: true, output: accessLog },
    ...(o.tracing ? { tracing: { otlp: { endpoint: o.tracing }, sampleRatio: 0.1 } } : {}),
    shutdown: { drainTimeout: '1s' }, // the bench stops it right after the last wrk run
    ...(o.metricsAdminPort !== undefined
      ? { admin: { address: '127.0.0.1', port: o.metricsAdminPort }, metrics: { enabled: true } }
      : {}),
  };
  return stringify(config);
}

/** A short excerpt of what the process printed, for one-line failure reasons. */
function reasonFrom(child: Child, err: Error): string {
  const lines = child
    .tail()
    .trim()
    .split('\n')
    .filter((l) => l.trim());
  const interesting = lines.filter((l) => /error|invalid|unknown|expected|TP_/i.test(l)).slice(0, 3);
  return [err.message, ...(interesting.length ? interesting : lines.slice(-3))].join(' | ').slice(0, 600);
}

/** A failed start; `exited` tells a refused config (worth retrying without plugins) from a hang. */
export class LaunchError extends Error {
  readonly exited: boolean;
  constructor(message: string, exited: boolean) {
    super(message);
    this.exited = exited;
  }
}

async function launch(dir: string, backendPort: number, o: LaunchOptions): Promise<Turnpike> {
  const port = await freePort();
  const gateways = o.gateways ?? [];
  const base = `turnpike${o.workers ? '-workers' : ''}${o.extraRoutes ? '-routes' : ''}${o.tracing ? '-tracing' : ''}${gateways.length ? `-gateway-${gateways.join('-')}` : ''}${o.metricsAdminPort !== undefined ? '-metrics' : ''}`;
  const configFile = join(dir, `${base}.yaml`);
  const accessLog = join(dir, `${base}-access.log`);
  writeFileSync(configFile, (o.build?.configYaml ?? configYaml)(port, backendPort, accessLog, o));
  const args = [...(o.build?.nodeFlags ?? NODE_FLAGS), o.build?.cli ?? CLI, 'start', '--config', configFile];
  const child = startChild(process.execPath, args, { guard: true });
  try {
    await waitFor200(`http://127.0.0.1:${port}/100b`, READY_TIMEOUT_MS, () => child.hasExited());
  } catch (err) {
    const exited = child.hasExited();
    // A refused config: the gateway's own first words on stderr say why.
    const firstLine = exited ? child.stderrHead().trim().split('\n')[0] : undefined;
    const reason = firstLine || reasonFrom(child, err as Error);
    await child.stop(1000);
    throw new LaunchError(reason, exited);
  }
  return { child, port, configFile, accessLog, gatewaySkipped: new Map() };
}

/** The launch, or the LaunchError of a config the gateway refused (it exited); a hang is thrown. */
async function tryLaunch(dir: string, backendPort: number, o: LaunchOptions): Promise<Turnpike | LaunchError> {
  try {
    return await launch(dir, backendPort, o);
  } catch (err) {
    if (err instanceof LaunchError && err.exited) return err;
    throw err; // a hang would only hang again
  }
}

export interface GatewayWant {
  readonly gateways: readonly GatewayKind[];
  readonly redisUrl?: string;
  readonly build?: Build;
}

/**
 * Starts Turnpike with the requested gateway routes beside the bare one. A config refused because of a gateway
 * route (say, a plugin is not built yet) is retried without the route(s) at fault — found by starting each
 * alone — so the `turnpike` target and the other gateway case can still be measured.
 */
export async function startTurnpike(dir: string, backendPort: number, want: GatewayWant): Promise<Turnpike> {
  const skipped = new Map<GatewayKind, string>();
  let kinds = [...want.gateways];
  let tp: Turnpike;
  for (;;) {
    const res = await tryLaunch(dir, backendPort, { gateways: kinds, redisUrl: want.redisUrl, build: want.build });
    if (!(res instanceof LaunchError)) {
      tp = res;
      break;
    }
    if (kinds.length === 0) throw res;
    console.error(
      `turnpike did not start with the gateway route(s) ${kinds.map((k) => GATEWAY_PREFIX[k]).join(', ')} (${res.message})`,
    );
    let blamed = new Map<GatewayKind, string>();
    if (kinds.length > 1) {
      for (const k of kinds) {
        const alone = await tryLaunch(dir, backendPort, { gateways: [k], redisUrl: want.redisUrl, build: want.build });
        if (alone instanceof LaunchError) blamed.set(k, alone.message);
        else await alone.child.stop(1000);
      }
    }
    if (blamed.size === 0) blamed = new Map(kinds.map((k) => [k, res.message]));
    for (const [k, why] of blamed) skipped.set(k, `config with plugins refused: ${why}`);
    kinds = kinds.filter((k) => !blamed.has(k));
    console.error(
      `retrying ${kinds.length ? `with only ${kinds.map((k) => GATEWAY_PREFIX[k]).join(', ')}` : 'without gateway routes'}`,
    );
  }
  for (const k of kinds) {
    const url = `http://127.0.0.1:${tp.port}${GATEWAY_PREFIX[k]}/100b`;
    const headers = await gatewayHeaders(k);
    // The Redis client connects in the background (no offline queue): give it a moment before a 503 counts.
    const deadline = Date.now() + (k === 'redis' ? 3000 : 0);
    let problem = await gatewayProblem(k, url, headers, 100);
    while (problem && / 503,/.test(problem) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      problem = await gatewayProblem(k, url, headers, 100);
    }
    if (problem) skipped.set(k, problem);
  }
  return { ...tp, gatewaySkipped: skipped };
}

/** Turnpike with `workers: auto` (one process per core); throws a LaunchError whose message is the first
 *  line of stderr when the gateway refuses the setting. */
export function startTurnpikeWorkers(dir: string, backendPort: number): Promise<Turnpike> {
  return launch(dir, backendPort, { workers: 'auto' });
}

/**
 * Turnpike with tracing at the default ratio (0.1), exporting to an OTLP/HTTP sink in this process that reads and
 * drops each batch: the cost of spans, propagation and export over the bare route.
 */
export async function startTurnpikeTracing(dir: string, backendPort: number): Promise<Turnpike> {
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  sink.unref(); // lives as long as the bench process, never keeps it alive
  const { port } = sink.address() as AddressInfo;
  return launch(dir, backendPort, { tracing: `http://127.0.0.1:${port}/v1/traces` });
}

/**
 * The metrics-cost case: a Turnpike process with the same gateway route as turnpike-gateway (memory store) and
 * `metrics` on, scraped once at start (the series must be there: the route's request counter after a request).
 */
export async function startTurnpikeMetrics(dir: string, backendPort: number): Promise<Turnpike> {
  const adminPort = await freePort();
  const tp = await launch(dir, backendPort, { gateways: ['memory'], metricsAdminPort: adminPort });
  const problem = await gatewayProblem(
    'memory',
    `http://127.0.0.1:${tp.port}${GATEWAY_PREFIX.memory}/100b`,
    await gatewayHeaders('memory'),
    100,
  );
  const scrape = await httpGetText(`http://127.0.0.1:${adminPort}/metrics`, 3000);
  const why =
    problem ??
    (scrape.status !== 200 || !scrape.body.includes('turnpike_requests_total{route="gateway-memory"')
      ? `GET /metrics on the admin port answered ${scrape.status} without the gateway route's request counter`
      : undefined);
  if (why) {
    await tp.child.stop(1000);
    throw new Error(why);
  }
  return tp;
}

/** Turnpike with 10,000 other routes in front of the measured one: routing cost must not grow with the table. */
export function startTurnpikeManyRoutes(dir: string, backendPort: number): Promise<Turnpike> {
  return launch(dir, backendPort, { extraRoutes: 10_000 });
}
