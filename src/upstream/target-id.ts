// Target identities, computable without loading undici (the primary of a multi-worker instance uses them).
import type { UpstreamConfig } from '../config/schema.ts';

/**
 * A target's identity for health verdicts and the state kept across reloads (ejections, in-flight counts):
 * its upstream and origin, so a change of weight or timeouts keeps what was learned about it. The primary
 * computes the same keys to send health results to workers.
 */
export function targetKey(upstreamName: string, url: string): string {
  return `${upstreamName}|${new URL(url).origin}`;
}

/**
 * What an undici connection pool to one origin is built from: upstream, origin and the settings that shape
 * the pool. A target keeps its pool (warm connections) while this is unchanged.
 */
export function connectionsId(upstreamName: string, origin: string, upstream: UpstreamConfig): string {
  const t = upstream.timeouts;
  return (
    `${upstreamName}|${origin}|${t.connect}/${t.response}/${t.idle}|` +
    `${upstream.keepAlive.connections}/${upstream.keepAlive.idleTimeout}|${upstream.http2 ? 'h2' : 'h1'}|${JSON.stringify(upstream.tls ?? null)}`
  );
}

/** The health id of a tcp:// target (L4 pools hold no connection pool; the id is upstream and address). */
export function l4TargetId(upstreamName: string, url: URL): string {
  return `l4|${upstreamName}|${url.host}`;
}
