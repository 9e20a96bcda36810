// A stand-in for Consul's HTTP API on port 0, the subset discovery uses: GET /v1/health/service/<service> with
// `passing`, `tag` (each one required), `dc`, and blocking queries (`index` + `wait`: the answer waits until the
// index moves past the one asked, or the wait ends), X-Consul-Index on every answer, an ACL token checked in
// X-Consul-Token. A test registers instances, sets their health, moves the index back, or takes the agent down.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ConsulInstance {
  readonly id: string;
  /** Service.Address: empty or absent means the node's address. */
  readonly address?: string;
  readonly nodeAddress?: string;
  readonly port: number;
  readonly tags?: readonly string[];
  /** Service.Weights.Passing (absent: Consul's default, 1). */
  readonly weight?: number;
  readonly status?: 'passing' | 'warning' | 'critical';
}

export interface ConsulStandIn {
  /** http://127.0.0.1:<port> */
  readonly address: string;
  /** Every health request, in order: its path and query, and the token sent. */
  readonly requests: { readonly url: URL; readonly token: string | undefined }[];
  /** Replaces a service's instances (the index moves on: blocked queries answer). */
  set(service: string, instances: readonly ConsulInstance[]): void;
  /** Sets the index the next answers carry (lower: a reset, as after a snapshot restore). */
  setIndex(index: number): void;
  /** Resolves when `n` queries are blocked waiting for a change. */
  whenBlocked(n: number): Promise<void>;
  /** Down: each request (and each blocked one) has its connection reset; up again: answers. */
  down(isDown: boolean): void;
  close(): Promise<void>;
}

/** "5m", "300s", "1500ms" → ms (the forms Consul's `wait` takes). */
function waitMs(text: string | null): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(text ?? '');
  if (m === null) return 5 * 60_000;
  const n = Number(m[1]);
  return Math.min(10 * 60_000, m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

export async function startConsulStandIn(options: { token?: string } = {}): Promise<ConsulStandIn> {
  const services = new Map<string, readonly ConsulInstance[]>();
  const requests: { url: URL; token: string | undefined }[] = [];
  let index = 10;
  let isDown = false;
  const blocked = new Set<{ wake: () => void; res: ServerResponse }>();
  const blockedWaiters: { n: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();

  const entries = (service: string, url: URL) =>
    (services.get(service) ?? [])
      .filter((i) => url.searchParams.get('passing') !== 'true' || (i.status ?? 'passing') === 'passing')
      .filter((i) => url.searchParams.getAll('tag').every((t) => (i.tags ?? []).includes(t)))
      .map((i) => ({
        Node: { Node: `node-${i.id}`, Address: i.nodeAddress ?? '127.0.0.1' },
        Service: {
          ID: i.id,
          Service: service,
          Address: i.address ?? '',
          Port: i.port,
          Tags: i.tags ?? [],
          Weights: { Passing: i.weight ?? 1, Warning: 1 },
        },
        Checks: [{ CheckID: 'serfHealth', Status: i.status ?? 'passing' }],
      }));

  function answer(res: ServerResponse, service: string, url: URL): void {
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(index) });
    res.end(JSON.stringify(entries(service, url)));
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (isDown) return void req.socket.destroy();
    const url = new URL(req.url ?? '/', 'http://consul');
    const token = req.headers['x-consul-token'] as string | undefined;
    const m = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || m === null) return void res.writeHead(404).end('no such endpoint');
    requests.push({ url, token });
    if (options.token !== undefined && token !== options.token) return void res.writeHead(403).end('ACL not found');
    const service = decodeURIComponent(m[1]!);
    const asked = Number(url.searchParams.get('index') ?? 0);
    if (asked <= 0 || asked < index) return answer(res, service, url);
    // A blocking query: wait until the index moves, or the wait ends (then the same index, as Consul does).
    const entry = {
      res,
      wake: () => {
        clearTimeout(timer);
        blocked.delete(entry);
        if (!res.writableEnded) answer(res, service, url);
      },
    };
    const timer = setTimeout(entry.wake, waitMs(url.searchParams.get('wait')));
    blocked.add(entry);
    res.on('close', () => {
      clearTimeout(timer);
      blocked.delete(entry);
    });
    for (const w of [...blockedWaiters])
      if (blocked.size >= w.n) {
        blockedWaiters.splice(blockedWaiters.indexOf(w), 1);
        w.resolve();
      }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const wakeAll = () => {
    for (const b of [...blocked]) b.wake();
  };
  return {
    address: `http://127.0.0.1:${port}`,
    requests,
    set(service, instances) {
      services.set(service, instances);
      index++;
      wakeAll();
    },
    setIndex(next) {
      index = next;
      wakeAll();
    },
    whenBlocked(n) {
      if (blocked.size >= n) return Promise.resolve();
      return new Promise((resolve) => blockedWaiters.push({ n, resolve }));
    },
    down(next) {
      isDown = next;
      if (next) for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
