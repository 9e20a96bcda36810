// Three `turnpike start` processes (workers: 1 each, an admin listener each) sharing one redis-server, behind
// Debian's HAProxy in TCP mode (health-checked on /readyz, PROXY protocol v2 to listeners that read it): the
// fixture of test/e2e/three-instances*.test.ts. A case passes the config's own part (upstreams, routes, discovery)
// and gets the balancer's port, each instance, and a steady load generator.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request as httpRequest, Agent } from 'node:http';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import { CLI, spawnGateway, type GatewayProcess } from './process.ts';
import { startHaproxy, type Haproxy } from './haproxy.ts';
import { startRedisServer, type RedisServer } from './redis.ts';
import { tempDir } from './servers.ts';

export interface Instance {
  readonly gw: GatewayProcess;
  /** The HTTP listener HAProxy forwards to (it expects a PROXY v2 header from 127.0.0.1). */
  readonly web: number;
  readonly admin: number;
}

export interface ThreeInstances {
  readonly redis: RedisServer;
  readonly haproxy: Haproxy;
  readonly instances: readonly Instance[];
  /** HAProxy's frontend: where clients go. */
  readonly port: number;
  stop(): Promise<void>;
}

export interface FixtureOptions {
  /** `shutdown.acceptGrace` of every instance (default 0s: the product's default). */
  acceptGrace?: string;
  /** More listeners of instance `i` (YAML list items under `listeners:`), e.g. an https one with `acme:`. */
  listeners?: (i: number) => string[];
  /** Start every instance with `--config URL` (etcd:// or redis://), `publish` filling it first with the config text. */
  store?: { readonly url: string; publish(text: string): Promise<void> };
}

/** The config of one instance: `body` (upstreams, routes, discovery...) with the listener, admin, Redis and shutdown. */
export function instanceConfig(redisUrl: string, body: string, options: FixtureOptions = {}, i = 0): string {
  const more = (options.listeners?.(i) ?? []).map((l) => `\n  - ${l}`).join('');
  return `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0, proxyProtocol: true, trustedProxies: [127.0.0.1] }${more}
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
stores: { redis: { url: "${redisUrl}" } }
workers: 1
shutdown: { acceptGrace: ${options.acceptGrace ?? '0s'}, drainTimeout: 10s }
${body}
`;
}

export async function startThreeInstances(body: string, options: FixtureOptions = {}): Promise<ThreeInstances> {
  const redis = await startRedisServer();
  const started: GatewayProcess[] = [];
  try {
    // One config in a store serves all three (its listeners on port 0 each bind their own port).
    if (options.store !== undefined) await options.store.publish(instanceConfig(redis.url, body, options));
    const listeners = 2 + (options.listeners?.(0).length ?? 0);
    // One after the other: three processes compiling at once on a 2-core machine start no sooner.
    for (let i = 0; i < 3; i++)
      started.push(
        await spawnGateway(instanceConfig(redis.url, body, options, i), {
          listeners,
          startTimeoutMs: 20_000,
          config: options.store?.url,
        }),
      );
    const instances = started.map((gw) => ({ gw, web: gw.port('web'), admin: gw.port('admin') }));
    const haproxy = await startHaproxy(
      instances.map((i) => ({ port: i.web, adminPort: i.admin })),
      { sendProxyV2: true },
    );
    return {
      redis,
      haproxy,
      instances,
      port: haproxy.port,
      async stop() {
        await haproxy.stop();
        await Promise.all(started.map((gw) => gw.stop()));
        await redis.stop();
      },
    };
  } catch (err) {
    for (const gw of started) gw.child.kill('SIGKILL');
    await redis.stop();
    throw err;
  }
}

/** Requests an instance answered, by its `turnpike_requests_total` on its admin listener. */
export async function served(instance: Instance): Promise<number> {
  const { body } = await get(instance.admin, '/metrics');
  let n = 0;
  for (const m of body.matchAll(/^turnpike_requests_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One GET; `localAddress` picks the client's address on loopback (127.0.0.2...), `agent` a keep-alive pool. */
export function get(
  port: number,
  path: string,
  options: { localAddress?: string; agent?: Agent | false } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, localAddress: options.localAddress, agent: options.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  ok: number;
  /** Answers other than 200. */
  bad: number;
  /** Requests that got no answer (reset, closed), with their error codes. */
  failed: number;
  errors: string[];
}

export interface Load {
  /** The result so far (live). */
  readonly result: LoadResult;
  /** Resolves once `n` more requests have ended, whatever their outcome. */
  more(n: number): Promise<void>;
  /** Stops the clients (each ends its request in flight) and resolves with the totals. */
  stop(): Promise<LoadResult>;
}

/**
 * A steady stream of GETs through `port`: `fresh` clients each open a new connection per request (what the issue's
 * SIGKILL case counts: a failure is a request in flight on the killed instance), `keepAlive` clients each reuse one
 * connection until the server closes it (a drain answers with Connection: close).
 */
export function steadyLoad(port: number, clients: { fresh: number; keepAlive: number }, path = '/'): Load {
  const result: LoadResult = { ok: 0, bad: 0, failed: 0, errors: [] };
  let running = true;
  const waiters: { at: number; resolve: () => void }[] = [];
  const ended = () => {
    const total = result.ok + result.bad + result.failed;
    for (const w of waiters.splice(0))
      if (total >= w.at) w.resolve();
      else waiters.push(w);
  };
  const agents: Agent[] = [];
  const loop = async (agent: Agent | false) => {
    while (running) {
      try {
        const r = await get(port, path, { agent });
        if (r.status === 200) result.ok++;
        else result.bad++;
      } catch (err) {
        result.failed++;
        result.errors.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      ended();
    }
  };
  const loops: Promise<void>[] = [];
  // The kept-alive clients connect first, one after the other: round robin puts three of them on three instances.
  for (let i = 0; i < clients.keepAlive; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    loops.push(loop(agent));
  }
  for (let i = 0; i < clients.fresh; i++) loops.push(loop(false));
  return {
    result,
    more(n) {
      const at = result.ok + result.bad + result.failed + n;
      return new Promise((resolve) => waiters.push({ at, resolve }));
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
      return result;
    },
  };
}

/** `turnpike register` as a child process, with the config of one instance (it names the Redis). */
export function registrar(file: string, ...args: string[]): ChildProcess & { registered: Promise<number> } {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'register', '--config', file, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  // When the key is in Redis (performance.now()): the registrar logs "registered" once its first write succeeded.
  const registered = new Promise<number>((resolve) =>
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      log += s;
      if (log.includes('"msg":"registered"')) resolve(performance.now());
    }),
  );
  return Object.assign(child, { registered });
}

/** Whether the instance's GET /api/upstreams lists `url` among `upstream`'s targets. */
export async function listsTarget(instance: Instance, upstream: string, url: string): Promise<boolean> {
  const { upstreams } = JSON.parse((await get(instance.admin, '/api/upstreams')).body) as {
    upstreams: { name: string; targets: { url: string }[] }[];
  };
  return upstreams.find((u) => u.name === upstream)!.targets.some((t) => t.url === url);
}

/** The hash turnpike_config_info reports for a config's text (SHA-256, 12 hex digits). */
export const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The `hash` label of the instance's turnpike_config_info (the text it runs). */
export async function configHash(instance: Instance): Promise<string | undefined> {
  return /^turnpike_config_info\{[^}]*hash="([0-9a-f]+)"[^}]*\} 1$/m.exec(
    (await get(instance.admin, '/metrics')).body,
  )?.[1];
}

/** `turnpike push FILE --to URL` as a user runs it: its exit code and output. */
export async function push(text: string, to: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(tempDir(), 'turnpike.yaml');
  writeFileSync(file, text);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      ...NODE_FLAGS,
      CLI,
      'push',
      file,
      '--to',
      to,
    ]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
