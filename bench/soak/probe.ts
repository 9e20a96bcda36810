// What the soak measures in the gateway process: RSS and open file descriptors from /proc, and — through the
// inspector the gateway runs with (--inspect=127.0.0.1:0, loopback only) — the V8 heap after a full collection and
// the active libuv handles and requests (process.getActiveResourcesInfo). A full collection first makes the heap a
// level a leak shows in, rather than wherever the collector happened to be.
import { readdirSync, readFileSync } from 'node:fs';

export interface Sample {
  /** Seconds since the soak's measured phase began. */
  readonly at: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** What V8 has reserved for its heap (young generation included): RSS moves with it, not only with heapUsed. */
  readonly heapTotalBytes: number;
  /** Memory V8 tracks outside its heap: Buffers and ArrayBuffers (a leaked Buffer shows here, not in heapUsed). */
  readonly externalBytes: number;
  /**
   * What JavaScript holds: heap used plus external memory, both after a full collection. A leaked Buffer shows here
   * even where RSS does not move (the allocator hands it memory it kept from an earlier burst: seen with 16 MB).
   */
  readonly heldBytes: number;
  readonly fds: number;
  readonly handles: number;
  /** Handle and request counts by type (TCPSocketWrap, Timeout, ...), to say what grew. */
  readonly byType: Readonly<Record<string, number>>;
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** One inspector session: connect, run `fn` with a way to call methods, disconnect. */
async function withInspector<T>(
  url: string,
  fn: (call: (method: string, params?: object) => Promise<unknown>) => Promise<T>,
): Promise<T> {
  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`inspector ${url} refused the connection`)), { once: true });
  });
  try {
    return await fn(
      (method, params = {}) =>
        new Promise<unknown>((resolve, reject) => {
          const id = nextId++;
          pending.set(id, { resolve, reject });
          ws.send(JSON.stringify({ id, method, params }));
        }),
    );
  } finally {
    ws.close();
  }
}

/** Evaluates `expression` (which must give a JSON string) in the gateway's main context. */
async function evaluate(
  call: (method: string, params?: object) => Promise<unknown>,
  expression: string,
): Promise<unknown> {
  const r = (await call('Runtime.evaluate', { expression, returnByValue: true })) as {
    result: { value?: string };
    exceptionDetails?: { text: string };
  };
  if (r.exceptionDetails || r.result.value === undefined) throw new Error(`inspector: ${expression} failed`);
  return JSON.parse(r.result.value);
}

/** The gateway's live sockets (the ref'd ones, as libuv counts them), to say what a growth holds. */
export function describeSockets(url: string): Promise<string[]> {
  return withInspector(url, (call) =>
    evaluate(
      call,
      `JSON.stringify(process._getActiveHandles().filter((h) => h.localPort !== undefined).map((h) =>
        h.constructor.name + ' ' + h.localPort + ' -> ' + h.remotePort + ' ' + h.readyState +
        (h.destroyed ? ' destroyed' : '') + (h.alpnProtocol ? ' ' + h.alpnProtocol : '') +
        (h._httpMessage ? ' ' + h._httpMessage.constructor.name : '') +
        ' read ' + h.bytesRead + ' B, written ' + h.bytesWritten + ' B, timeout ' + h.timeout +
        (h.readableEnded ? ' read-ended' : '') + (h.writableEnded ? ' write-ended' : '') +
        (h._parent ? ' parent' : '') + (h.listenerCount('data') ? ' data-listeners ' + h.listenerCount('data') : '') +
        ' events ' + Object.keys(h._events ?? {}).join(',')))`,
    ),
  ) as Promise<string[]>;
}

/**
 * Waits until the gateway's descriptor count has held still for `quietMs` (its idle upstream connections close
 * after the soak config's keep-alive idle timeout), at most `maxMs`: samples then compare an idle gateway with
 * an idle gateway, not two moments of a pool's size.
 */
export async function settle(pid: number, quietMs = 1500, maxMs = 10_000): Promise<void> {
  const end = performance.now() + maxMs;
  let last = fdCount(pid);
  let since = performance.now();
  while (performance.now() < end && performance.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 100));
    const now = fdCount(pid);
    if (now !== last) {
      last = now;
      since = performance.now();
    }
  }
}

export async function sample(pid: number, inspectorUrl: string, at: number): Promise<Sample> {
  const { memory, resources } = (await withInspector(inspectorUrl, async (call) => {
    await call('HeapProfiler.collectGarbage');
    return evaluate(
      call,
      'JSON.stringify({ memory: process.memoryUsage(), resources: process.getActiveResourcesInfo() })',
    );
  })) as { memory: NodeJS.MemoryUsage; resources: string[] };
  const byType: Record<string, number> = {};
  for (const r of resources) byType[r] = (byType[r] ?? 0) + 1;
  return {
    at,
    rssBytes: rssBytes(pid),
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    heldBytes: memory.heapUsed + memory.external,
    fds: fdCount(pid),
    handles: resources.length,
    byType,
  };
}
