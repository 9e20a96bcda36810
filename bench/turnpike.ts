// Starting the Turnpike gateway under test from the built CLI, with a generated config.
import { NODE_FLAGS } from '../src/runtime/node-flags.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startChild, type Child } from './children.ts';
import { freePort, httpGet, waitFor200 } from './net.ts';

/** The built CLI, resolved from this file so the bench works from any working directory.
 *  TURNPIKE_BENCH_CLI points the bench at another build (for example an older checkout) to compare. */
export const CLI = process.env.TURNPIKE_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 15_000;

export interface Turnpike {
  readonly child: Child;
  readonly port: number;
  readonly configFile: string;
  readonly accessLog: string;
  /** Why the `gateway` target cannot be measured, if it cannot. */
  readonly gatewaySkipped?: string;
}

/** The gateway case: what a real API route carries — header rewriting both ways plus a path rewrite — with
 *  the access log on (as it is for every Turnpike target). Served at /api by the single-process Turnpike. */
function gatewayRoute(): object {
  return {
    name: 'gateway',
    match: { path: { prefix: '/api' } },
    upstream: 'backend',
    plugins: [
      { headers: { request: { set: { 'x-gateway': 'turnpike' } }, response: { set: { 'cache-control': 'no-store' } } } },
      { rewrite: { stripPrefix: '/api' } },
    ],
  };
}

export interface LaunchOptions {
  /** Adds the plugin route under /api (the gateway case). */
  readonly gateway: boolean;
  /** Top-level `workers:` setting; omitted for the single-process target. */
  readonly workers?: 'auto';
  /** Extra routes in front of the measured one (the route-count case). */
  readonly extraRoutes?: number;
}

/** `n` routes that do not match the bench's requests, mixing exact hosts, wildcard hosts, params and methods,
 *  so the router's host table and trees are as large as a real config with that many routes. */
export function manyRoutes(n: number): object[] {
  const routes: object[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) routes.push({ match: { host: `h${i}.example.com`, path: `/api/v${i}` }, upstream: 'backend' });
    else if (i % 3 === 1) routes.push({ match: { host: `*.t${i}.example.com`, path: `/svc${i}/:id` }, upstream: 'backend' });
    else routes.push({ match: { path: `/p${i}/items`, methods: ['GET'] }, upstream: 'backend' });
  }
  return routes;
}

export function configYaml(port: number, backendPort: number, accessLog: string, o: LaunchOptions): string {
  const config = {
    ...(o.workers ? { workers: o.workers } : {}),
    listeners: [{ name: 'bench', protocol: 'http', address: '127.0.0.1', port }],
    upstreams: { backend: { targets: [{ url: `http://127.0.0.1:${backendPort}` }] } },
    routes: [
      ...manyRoutes(o.extraRoutes ?? 0),
      ...(o.gateway ? [gatewayRoute()] : []),
      { name: 'all', match: { path: '/' }, upstream: 'backend' },
    ],
    accessLog: { enabled: true, output: accessLog },
    shutdown: { drainTimeout: '1s' }, // the bench stops it right after the last wrk run
  };
  return stringify(config);
}

/** A short excerpt of what the process printed, for one-line failure reasons. */
function reasonFrom(child: Child, err: Error): string {
  const lines = child.tail().trim().split('\n').filter((l) => l.trim());
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
  const base = `turnpike${o.workers ? '-workers' : ''}${o.extraRoutes ? '-routes' : ''}${o.gateway ? '' : '-plain'}`;
  const configFile = join(dir, `${base}.yaml`);
  const accessLog = join(dir, `${base}-access.log`);
  writeFileSync(configFile, configYaml(port, backendPort, accessLog, o));
  const child = startChild(process.execPath, [...NODE_FLAGS, CLI, 'start', '--config', configFile], { guard: true });
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
  return { child, port, configFile, accessLog };
}

/** Checks that the plugin route really answers as configured, so we never benchmark a 404. */
async function checkGateway(port: number): Promise<string | undefined> {
  try {
    const res = await httpGet(`http://127.0.0.1:${port}/api/100b`, 3000);
    if (res.status !== 200) return `GET /api/100b answered ${res.status}`;
    if (res.bodyLength !== 100) return `GET /api/100b returned ${res.bodyLength} bytes, expected 100`;
    if (res.headers['cache-control'] !== 'no-store') return `GET /api/100b lacks cache-control: no-store (headers plugin not applied)`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Starts Turnpike with the gateway route. If that config is refused (say, a plugin is not built yet),
 * falls back to the plain proxy config so the `turnpike` target can still be measured.
 */
export async function startTurnpike(dir: string, backendPort: number, wantGateway: boolean): Promise<Turnpike> {
  if (!wantGateway) return launch(dir, backendPort, { gateway: false });
  let first: LaunchError;
  try {
    const tp = await launch(dir, backendPort, { gateway: true });
    const problem = await checkGateway(tp.port);
    return problem ? { ...tp, gatewaySkipped: problem } : tp;
  } catch (err) {
    if (!(err instanceof LaunchError) || !err.exited) throw err; // a hang would only hang again
    first = err;
  }
  console.error(`turnpike did not start with the gateway route (${first.message}); retrying without it`);
  const tp = await launch(dir, backendPort, { gateway: false });
  return { ...tp, gatewaySkipped: `config with plugins refused: ${first.message}` };
}

/** Turnpike with `workers: auto` (one process per core); throws a LaunchError whose message is the first
 *  line of stderr when the gateway refuses the setting. */
export function startTurnpikeWorkers(dir: string, backendPort: number): Promise<Turnpike> {
  return launch(dir, backendPort, { gateway: false, workers: 'auto' });
}

/** Turnpike with 10,000 other routes in front of the measured one: routing cost must not grow with the table. */
export function startTurnpikeManyRoutes(dir: string, backendPort: number): Promise<Turnpike> {
  return launch(dir, backendPort, { gateway: false, extraRoutes: 10_000 });
}
