// A route's `fallback`: the answer when its upstream cannot give one. It is one more upstream override
// (ctx.onUpstream), registered as the terminal starts: after the request phases, so a cache's stale-if-error copy,
// registered in the cache phase, is asked first. Its Reply carries no code, so the log keeps the upstream's
// (TP_CIRCUIT_OPEN, TP_UPSTREAM_TIMEOUT ...).
import type { FallbackConfig } from '../config/fallback-schema.ts';
import type { Reply, UpstreamOverride } from '../request-context.ts';
import type { Terminal } from '../terminals/terminal.ts';
import type { UpstreamPool } from '../upstream/pool.ts';

/** `pool`: the route's one upstream, whose open breaker says how long to wait (Retry-After); null for several. */
export function compileFallback(config: FallbackConfig, pool: UpstreamPool | null): UpstreamOverride {
  const headers: Record<string, string> = {
    'content-type': config.contentType,
    'cache-control': 'no-store',
    ...Object.fromEntries(Object.entries(config.headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
  const reply: Reply = { status: config.status, headers, body: config.body };
  const onStatus = new Set(config.onStatus);
  // A 503 says when to come back (RFC 9110 10.2.3): the breaker's remaining wait when it is open, else a second.
  const retryAfter = config.status === 503 && headers['retry-after'] === undefined;
  const answer = retryAfter
    ? (): Reply => ({
        ...reply,
        headers: { ...headers, 'retry-after': String(Math.max(1, pool?.retryAfterSeconds() ?? 0)) },
      })
    : (): Reply => reply;
  // head null: the upstream failed (no target, breaker, admission, connect, timeout, after retries). An answer of
  // its own is relayed unless onStatus lists its status.
  return (status, head) => (head === null || onStatus.has(status) ? answer() : undefined);
}

/** The terminal with the fallback registered before each run (WebSocket upgrades are left as they are). */
export function withFallback(terminal: Terminal, fallback: UpstreamOverride): Terminal {
  const run = terminal.run;
  return {
    ...terminal,
    run(ctx) {
      ctx.onUpstream(fallback);
      run(ctx);
    },
  };
}
