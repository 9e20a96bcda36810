// What 10,000 cached 1 KiB objects cost a gateway process (memory store): RSS as the OS sees it, and — after a full
// GC run through the gateway's inspector — what its heap and buffers hold per object, the figure a regression moves.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { procStatusBytes, spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startBackend, type Backend } from '../helpers/servers.ts';

const OBJECTS = 10_000;
const BODY_BYTES = 1024;
const WARM_UP = 200;
const CONCURRENCY = 32;
const SETTLE_MS = 500;
const MiB = 1024 * 1024;
// Measured on a loaded 2-core machine (11 runs): heap + external after a full GC grew 25.7–25.8 MiB every time
// (~2,700 B per object: 1,024 of body, the rest entry, policy and index; 33 B without the cache plugin). RSS after
// that GC +13 to +43 MiB; RSS after only a settle −3 to +74 MiB (+46 MiB once with no cache at all): GC timing, so
// that one is reported, not asserted. Bounds ~2× the worst seen: a doubled per-object cost (a request's context or a
// socket buffer kept per entry) breaks them, noise does not.
const MAX_HELD = 52 * MiB;
const MAX_RSS_AFTER_GC = 96 * MiB;

/** A distinct JSON body of exactly BODY_BYTES for each path. */
function bodyFor(path: string): string {
  const bare = JSON.stringify({ path, pad: '' });
  return JSON.stringify({ path, pad: 'x'.repeat(BODY_BYTES - bare.length) });
}

interface Got {
  readonly status: number;
  readonly xCache: string | undefined;
  readonly body: string;
}

interface Collected {
  readonly rss: number;
  readonly heapUsed: number;
  /** Memory outside the JS heap: Buffers (the cached bodies among them). */
  readonly external: number;
}

const mib = (n: number) => `${n < 0 ? '−' : '+'}${(Math.abs(n) / MiB).toFixed(1)} MiB`;
const perObject = (n: number) => `${Math.round(n / OBJECTS).toLocaleString('en-US')} B per object`;

describe('cache memory store footprint', () => {
  let backend: Backend;
  let gateway: GatewayProcess;
  let inspector: string;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  before(async () => {
    backend = await startBackend((req, res) => {
      const body = bodyFor(req.url!);
      res.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'max-age=600',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    // A GC cannot be asked of the gateway any other way: its inspector, on a free loopback port, runs one.
    const options = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${options ?? ''} --inspect=127.0.0.1:0`.trim();
    try {
      gateway = await spawnGateway(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: cached
    match: { path: / }
    upstream: app
    plugins:
      - cache: { store: memory, maxSize: 256mb }
`);
    } finally {
      if (options === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = options;
    }
    const url = gateway.logLines
      .map((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1])
      .find((u) => u !== undefined);
    assert.ok(url, `no inspector address in the gateway's output:\n${gateway.logLines.join('\n')}`);
    inspector = url;
  });

  after(async () => {
    agent.destroy();
    await gateway?.stop();
    await backend?.close();
  });

  function get(path: string): Promise<Got> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gateway.port(), path, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            xCache: res.headers['x-cache'] as string | undefined,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** GETs every path, CONCURRENCY at a time; returns how many answers carried each X-Cache value. */
  async function getAll(paths: readonly string[]): Promise<Map<string, number>> {
    const labels = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const path = paths[next++]!;
        const r = await get(path);
        assert.equal(r.status, 200, `GET ${path}`);
        assert.equal(r.body.length, BODY_BYTES, `GET ${path}`);
        labels.set(r.xCache ?? 'none', (labels.get(r.xCache ?? 'none') ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return labels;
  }

  /** The gateway's RSS once in-flight work is over (what `ps` would show; garbage included). */
  async function settledRss(): Promise<number> {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return procStatusBytes(gateway.pid, 'VmRSS');
  }

  /** After a full GC in the gateway: its RSS, and what its heap and buffers still hold. */
  async function collected(): Promise<Collected> {
    const ws = new WebSocket(inspector);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`could not connect to the gateway's inspector at ${inspector}`));
    });
    const replies = new Map<number, (result: any) => void>();
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown };
      if (msg.id !== undefined) replies.get(msg.id)?.(msg.result);
    };
    let id = 0;
    const call = (method: string, params: object = {}) =>
      new Promise<any>((resolve) => {
        replies.set(++id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      });
    try {
      await call('HeapProfiler.collectGarbage');
      const usage = await call('Runtime.evaluate', { expression: 'process.memoryUsage()', returnByValue: true });
      const m = usage.result.value as NodeJS.MemoryUsage;
      return { rss: await procStatusBytes(gateway.pid, 'VmRSS'), heapUsed: m.heapUsed, external: m.external };
    } finally {
      ws.close();
    }
  }

  test(
    `${OBJECTS.toLocaleString('en-US')} cached 1 KiB objects hold less than ${MAX_HELD / MiB} MiB in the gateway`,
    { timeout: 120_000 },
    async (t) => {
      // Warm-up: the miss (fill) and the hit path both run, so their code and pools exist before the baseline.
      const warm = Array.from({ length: WARM_UP }, (_, i) => `/warm/${i}`);
      assert.deepEqual(await getAll(warm), new Map([['MISS', WARM_UP]]));
      assert.deepEqual(await getAll(warm), new Map([['HIT', WARM_UP]]));
      const rssBefore = await settledRss();
      const before = await collected();

      const paths = Array.from({ length: OBJECTS }, (_, i) => `/objects/${i}`);
      const started = performance.now();
      assert.deepEqual(await getAll(paths), new Map([['MISS', OBJECTS]]), 'every first request fills the cache');
      const fillMs = performance.now() - started;
      const rssAfter = await settledRss();
      const after = await collected();

      // Every 50th object, read back: a HIT with its own body, and the backend is not asked again.
      const asked = backend.requests.length;
      for (let i = 0; i < OBJECTS; i += 50) {
        const r = await get(paths[i]!);
        assert.equal(r.xCache, 'HIT', `GET ${paths[i]} after the fill`);
        assert.equal(r.body, bodyFor(paths[i]!));
      }
      assert.equal(backend.requests.length, asked, 'a read-back reached the backend');

      const rss = rssAfter - rssBefore;
      const rssGc = after.rss - before.rss;
      const heap = after.heapUsed - before.heapUsed;
      const external = after.external - before.external;
      t.diagnostic(
        `${OBJECTS.toLocaleString('en-US')} objects of ${BODY_BYTES.toLocaleString('en-US')} B body (filled in ${(fillMs / 1000).toFixed(1)} s): ` +
          `${mib(rss)} RSS after ${SETTLE_MS} ms (${(rssBefore / MiB).toFixed(1)} → ${(rssAfter / MiB).toFixed(1)} MiB), ${perObject(rss)}; ` +
          `after a full GC ${mib(rssGc)} RSS, ${perObject(rssGc)}; heap ${mib(heap)} + external ${mib(external)} = ` +
          `${mib(heap + external)}, ${perObject(heap + external)}`,
      );
      assert.ok(heap + external < MAX_HELD, `heap + external grew by ${mib(heap + external)} for ${OBJECTS} objects`);
      assert.ok(rssGc < MAX_RSS_AFTER_GC, `RSS after a full GC grew by ${mib(rssGc)} for ${OBJECTS} objects`);
    },
  );
});
