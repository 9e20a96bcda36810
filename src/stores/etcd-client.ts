// A small etcd v3 client over etcd's documented JSON gateway (POST /v3/kv/range, /v3/kv/put, /v3/watch; keys and
// values base64), with undici. Used by the etcd discovery provider and the etcd config source.
// Why not the `etcd3` npm package: it would bring a second @grpc/proto-loader, and its watcher reconnects on its
// own and hides a lost etcd, where our callers need the failure (keep the last good set, count the error).
import { request } from 'undici';
import { TurnpikeError } from '../errors.ts';

export interface EtcdKv {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

export interface EtcdEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: EtcdKv;
}

/** The revision a watch wanted was compacted away: list again, then watch from the new revision. */
export class EtcdCompactedError extends TurnpikeError {
  readonly compactRevision: number;
  constructor(compactRevision: number) {
    super('TP_ETCD_FAILED', `etcd compacted the history up to revision ${compactRevision}`);
    this.compactRevision = compactRevision;
  }
}

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
const kvOf = (raw: RawKv): EtcdKv => ({
  key: unb64(raw.key),
  value: unb64(raw.value),
  modRevision: Number(raw.mod_revision ?? 0),
});

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]! += 1;
      return end.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64'); // all 0xff: to the end of the keyspace
}

export interface EtcdClientOptions {
  /** Client URLs (http://host:2379); tried in order, the one that last answered first. */
  readonly endpoints: readonly string[];
  /** How long one unary call may take. */
  readonly timeoutMs?: number;
}

export class EtcdClient {
  private readonly endpoints: string[];
  private readonly timeoutMs: number;

  constructor(options: EtcdClientOptions) {
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /** A unary call to the first endpoint that answers; an endpoint that answered moves to the front. */
  private async call(path: string, body: object, signal?: AbortSignal): Promise<Record<string, unknown>> {
    let last: unknown;
    for (const endpoint of [...this.endpoints]) {
      try {
        const timeout = AbortSignal.timeout(this.timeoutMs);
        const res = await request(`${endpoint}${path}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
          signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`etcd ${endpoint}${path} answered ${res.statusCode}: ${text}`);
        this.prefer(endpoint);
        return JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        if (signal?.aborted) throw err;
        last = err;
      }
    }
    throw new TurnpikeError('TP_ETCD_FAILED', `etcd unreachable (${this.endpoints.join(', ')}): ${messageOf(last)}`);
  }

  private prefer(endpoint: string): void {
    const i = this.endpoints.indexOf(endpoint);
    if (i > 0) this.endpoints.unshift(...this.endpoints.splice(i, 1));
  }

  /** Every key under `prefix` (or the one key `key` with prefix false) and the store's revision then. */
  async range(key: string, prefix: boolean, signal?: AbortSignal): Promise<{ revision: number; kvs: EtcdKv[] }> {
    const out = await this.call(
      '/v3/kv/range',
      { key: b64(key), ...(prefix ? { range_end: prefixEnd(key) } : {}) },
      signal,
    );
    const header = out.header as { revision?: string } | undefined;
    return { revision: Number(header?.revision ?? 0), kvs: ((out.kvs as RawKv[] | undefined) ?? []).map(kvOf) };
  }

  async get(key: string, signal?: AbortSignal): Promise<{ revision: number; value: string | undefined }> {
    const { revision, kvs } = await this.range(key, false, signal);
    return { revision, value: kvs[0]?.value };
  }

  async put(key: string, value: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  async delete(key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  /**
   * Waits for the next batch of changes to `key` (or under it, with `prefix`) from `startRevision` on, and returns
   * it. Rejects when etcd cannot be reached or the stream ends, and with EtcdCompactedError when the revision is
   * gone. `signal` ends the watch (an AbortError).
   */
  async nextEvents(key: string, prefix: boolean, startRevision: number, signal: AbortSignal): Promise<EtcdEvent[]> {
    const create = {
      create_request: {
        key: b64(key),
        ...(prefix ? { range_end: prefixEnd(key) } : {}),
        start_revision: String(startRevision),
      },
    };
    const endpoint = this.endpoints[0]!;
    const ended = new AbortController();
    const stop = AbortSignal.any([signal, ended.signal]);
    try {
      const res = await request(`${endpoint}/v3/watch`, {
        method: 'POST',
        body: JSON.stringify(create),
        headers: { 'content-type': 'application/json' },
        signal: stop,
        headersTimeout: this.timeoutMs,
        bodyTimeout: 0, // a watch may wait for hours
      });
      if (res.statusCode !== 200) throw new Error(`etcd ${endpoint}/v3/watch answered ${res.statusCode}`);
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          const msg = JSON.parse(line) as { result?: Record<string, unknown>; error?: { message?: string } };
          if (msg.error !== undefined) throw new Error(`etcd watch: ${msg.error.message ?? JSON.stringify(msg.error)}`);
          const result = msg.result ?? {};
          if (result.compact_revision !== undefined && Number(result.compact_revision) > 0)
            throw new EtcdCompactedError(Number(result.compact_revision));
          if (result.canceled === true)
            throw new Error(`etcd canceled the watch: ${String(result.cancel_reason ?? '')}`);
          const events = (result.events as { type?: string; kv: RawKv }[] | undefined) ?? [];
          if (events.length > 0)
            return events.map((e) => ({ type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: kvOf(e.kv) }));
        }
      }
      throw new Error('the etcd watch stream ended');
    } catch (err) {
      if (err instanceof TurnpikeError || signal.aborted) throw err;
      // The next call may start on another endpoint.
      if (this.endpoints.length > 1) this.endpoints.push(this.endpoints.shift()!);
      throw new TurnpikeError('TP_ETCD_FAILED', `etcd watch on ${endpoint} failed: ${messageOf(err)}`);
    } finally {
      ended.abort(); // closes the stream once we have our batch
    }
  }
}

function messageOf(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } } | undefined;
  return e?.cause?.code ?? e?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
