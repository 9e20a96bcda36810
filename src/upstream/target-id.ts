// A target's identity, computable without loading undici (the primary of a multi-worker instance uses it).
import type { UpstreamConfig } from '../config/schema.ts';

/**
 * The id under which a target is reused across reloads (warm connections, health state): its upstream, URL and
 * everything that shapes it. The primary computes the same ids to send health results to workers.
 */
export function targetId(upstreamName: string, url: string, weight: number, backup: boolean, upstream: UpstreamConfig): string {
  const t = upstream.timeouts;
  return `${upstreamName}|${new URL(url).origin}|w${weight}${backup ? '|backup' : ''}|${t.connect}/${t.response}/${t.idle}|` +
    `${upstream.keepAlive.connections}/${upstream.keepAlive.idleTimeout}|${upstream.http2 ? 'h2' : 'h1'}|${JSON.stringify(upstream.tls ?? null)}`;
}

/** The health id of a tcp:// target (L4 pools hold no connection pool; the id is upstream and address). */
export function l4TargetId(upstreamName: string, url: URL): string {
  return `l4|${upstreamName}|${url.host}`;
}
