// The memory store's real footprint: the RSS a separate gateway process gains holding 10,000 cached 1 KiB objects,
// reported per object (the store's own maxSize accounting is an estimate; this is what the process pays).
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { procStatusBytes, spawnGateway, type GatewayProcess } from './helpers/process.ts';
import { startBackend, type Backend } from './helpers/servers.ts';

const OBJECTS = 10_000;
const BODY_BYTES = 1024;
const WARM_UP = 200;
const CONCURRENCY = 32;
const SETTLE_MS = 500; // no GC can be forced in the child: let in-flight garbage and sockets settle
const MiB = 1024 * 1024;
// Measured on a 2-core machine: +13.0 to +13.4 MiB (about 1.4 KB per object beyond the 1 KiB body). The bound is
// ~2.5× that: twice the per-object overhead fails it, GC timing does not.
const MAX_GROWTH = 32 * MiB;

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

describe('cache memory store footprint', () => {
  let backend: Backend;
  let gateway: GatewayProcess;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  before(async () => {
    backend = await startBackend((req, res) => {
      const body = bodyFor(req.url!);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
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
        res.on('end', () => resolve({ status: res.statusCode!, xCache: res.headers['x-cache'] as string | undefined, body: Buffer.concat(chunks).toString() }));
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

  async function settledRss(): Promise<number> {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return procStatusBytes(gateway.pid, 'VmRSS');
  }

  test(`${OBJECTS.toLocaleString('en-US')} cached 1 KiB objects add less than ${MAX_GROWTH / MiB} MiB to the gateway's RSS`, { timeout: 120_000 }, async (t) => {
    // Warm-up: both the miss (fill) and the hit path run, so their code and pools exist before the baseline.
    const warm = Array.from({ length: WARM_UP }, (_, i) => `/warm/${i}`);
    assert.deepEqual(await getAll(warm), new Map([['MISS', WARM_UP]]));
    assert.deepEqual(await getAll(warm), new Map([['HIT', WARM_UP]]));
    const before = await settledRss();

    const paths = Array.from({ length: OBJECTS }, (_, i) => `/objects/${i}`);
    const started = performance.now();
    const filled = await getAll(paths);
    const fillMs = performance.now() - started;
    assert.deepEqual(filled, new Map([['MISS', OBJECTS]]), 'every first request fills the cache');
    const after = await settledRss();

    // Every 50th object, read back: a HIT with its own body, and the backend is not asked again.
    const asked = backend.requests.length;
    for (let i = 0; i < OBJECTS; i += 50) {
      const r = await get(paths[i]!);
      assert.equal(r.xCache, 'HIT', `GET ${paths[i]} after the fill`);
      assert.equal(r.body, bodyFor(paths[i]!));
    }
    assert.equal(backend.requests.length, asked, 'hits reached the backend');

    const growth = after - before;
    t.diagnostic(
      `${OBJECTS.toLocaleString('en-US')} objects of ${BODY_BYTES.toLocaleString('en-US')} B body: ` +
        `${growth >= 0 ? '+' : '−'}${(Math.abs(growth) / MiB).toFixed(1)} MiB RSS ` +
        `(${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB), ${Math.round(growth / OBJECTS).toLocaleString('en-US')} B per object; ` +
        `filled in ${(fillMs / 1000).toFixed(1)} s`,
    );
    assert.ok(growth < MAX_GROWTH, `RSS grew by ${(growth / MiB).toFixed(1)} MiB for ${OBJECTS} objects`);
  });
});
