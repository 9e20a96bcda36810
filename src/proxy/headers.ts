// Header rules of a forwarding proxy: hop-by-hop removal (RFC 9110 §7.6.1), X-Forwarded-*, backend identity.
import type { IncomingHttpHeaders } from 'node:http';
import { OVERRIDE_HEADER_NAMES } from '../config/schema.ts';
import type { RequestContext } from '../request-context.ts';

/**
 * Never forwarded upstream as received: hop-by-hop, recomputed by the gateway, or overrides that would make a
 * backend read another method, URL or scheme than the one the gateway routed and cached the request by
 * (forwarded only where a route lists them in `forwardOverrideHeaders`).
 */
const REQUEST_SKIP = new Set<string>([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'http2-settings',
  'proxy-authorization',
  ...OVERRIDE_HEADER_NAMES.map((h) => h.toLowerCase()),
]);

/**
 * Client addresses other proxies and CDNs pass in their own headers: a backend that believes one of them would take
 * any client's word for its address. Forwarded only from a trusted peer (`trustedProxies`), as X-Forwarded-For is.
 */
const CLIENT_IP_HEADERS = new Set<string>([
  'x-real-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'fastly-client-ip',
  'x-originating-ip',
]);

/** Never returned to the client as received. */
const RESPONSE_SKIP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Header names listed in `Connection` (beyond keep-alive/close) are hop-by-hop too. */
export function connectionTokens(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return null;
  const v = Array.isArray(value) ? value.join(',') : value;
  if (v === 'keep-alive' || v === 'close' || v === 'Keep-Alive' || v === 'upgrade' || v === 'Upgrade') return null;
  const tokens: string[] = [];
  for (const part of v.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '' && t !== 'keep-alive' && t !== 'close' && t !== 'upgrade') tokens.push(t);
  }
  return tokens.length === 0 ? null : tokens;
}

/** What building the upstream headers needs from a compiled route; fixed when the config loads. */
export interface UpstreamHeaderPolicy {
  /** Send the client's Host (true, the default) or the target's `host:port`. */
  readonly preserveHost: boolean;
  readonly requestIdHeader: string;
  /** Headers carrying the consumer upstream: always removed from the client's request, set when identified. */
  readonly consumerNameHeader: string;
  readonly consumerGroupsHeader: string;
  /** The override headers (OVERRIDE_HEADER_NAMES) this route forwards from clients (lowercase), or null for none. */
  readonly overrideHeaders: ReadonlySet<string> | null;
  /** Upgrade protocols besides WebSocket the route tunnels (`upgrades:`, lowercase), or null. */
  readonly upgrades?: ReadonlySet<string> | null;
}

/** The protocols of an Upgrade request that go upstream: WebSocket alone, or those the route lists in `upgrades`. */
function upgradeOffer(offered: string, upgrades: ReadonlySet<string> | null | undefined): string {
  if (upgrades == null || /(?:^|,)\s*websocket\s*(?:,|$)/i.test(offered)) return 'websocket';
  const out: string[] = [];
  for (const p of offered.split(',')) {
    const name = p.trim().toLowerCase();
    if (upgrades.has(name)) out.push(name);
  }
  return out.join(', ');
}

/**
 * Builds the flat [name, value, ...] header list sent upstream. One pass over the request headers. `attempt`:
 * headers for this try alone (AttemptStartEvent), each replacing the client's header of that name.
 */
export function upstreamRequestHeaders(
  ctx: RequestContext,
  policy: UpstreamHeaderPolicy,
  targetHost: string,
  keepUpgrade: boolean,
  attempt: readonly string[] | null = null,
): string[] {
  const src: IncomingHttpHeaders = ctx.req.headers;
  const out: string[] = [];
  const remove = ctx.removeRequestHeaders;
  const extraHop = connectionTokens(src.connection);
  for (const name in src) {
    if (
      REQUEST_SKIP.has(name) ||
      name === policy.requestIdHeader ||
      name === policy.consumerNameHeader ||
      name === policy.consumerGroupsHeader
    ) {
      // `TE: trailers` is the one TE value HTTP/2 allows, and gRPC servers expect it: it goes on.
      if (name === 'te' && src.te === 'trailers') {
        out.push('te', 'trailers');
        continue;
      }
      if (keepUpgrade && name === 'upgrade') {
        // Only WebSocket, or what the route lists in `upgrades`, is tunnelled; other offered protocols go no further.
        out.push('upgrade', upgradeOffer(String(src.upgrade), policy.upgrades));
        continue;
      }
      const passed =
        (keepUpgrade && name === 'connection') || (policy.overrideHeaders !== null && policy.overrideHeaders.has(name));
      if (!passed) continue;
    }
    if (remove !== null && remove.has(name)) continue;
    if (attempt !== null && attempt.length > 0 && namedIn(attempt, name)) continue;
    if (!ctx.trustedPeer && CLIENT_IP_HEADERS.has(name)) continue;
    if (extraHop !== null && extraHop.includes(name)) continue;
    if (name.charCodeAt(0) === 58 /* ':' an HTTP/2 pseudo-header */) continue;
    const value = src[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (keepUpgrade) {
    // An upgrade needs `Connection: upgrade` whatever else the client listed there.
    for (let i = out.length - 2; i >= 0; i -= 2) if (out[i] === 'connection') out[i + 1] = 'upgrade';
  }
  out.push('host', policy.preserveHost && ctx.host !== '' ? ctx.host : targetHost);
  pushGatewayHeaders(ctx, policy, out);
  const set = ctx.setRequestHeaders;
  if (set !== null) for (let i = 0; i < set.length; i++) out.push(set[i]!);
  if (attempt !== null) for (let i = 0; i < attempt.length; i++) out.push(attempt[i]!);
  return out;
}

/**
 * What the gateway itself says upstream, whatever else goes: X-Forwarded-* (extended from a trusted peer), the
 * request id and the consumer headers. Pushed onto a flat [name, value, ...] list (an aggregate's calls use it too).
 */
export function pushGatewayHeaders(
  ctx: RequestContext,
  policy: Pick<UpstreamHeaderPolicy, 'requestIdHeader' | 'consumerNameHeader' | 'consumerGroupsHeader'>,
  out: string[],
): void {
  const src = ctx.req.headers;
  const xff = src['x-forwarded-for'];
  if (ctx.trustedPeer && xff !== undefined) {
    out.push('x-forwarded-for', `${Array.isArray(xff) ? xff.join(', ') : xff}, ${ctx.peer}`);
    out.push('x-forwarded-proto', firstValue(src['x-forwarded-proto']) ?? ctx.scheme);
    out.push('x-forwarded-host', firstValue(src['x-forwarded-host']) ?? ctx.host);
    const fwd = src.forwarded;
    if (fwd !== undefined) out.push('forwarded', fwd);
  } else {
    out.push('x-forwarded-for', ctx.peer, 'x-forwarded-proto', ctx.scheme, 'x-forwarded-host', ctx.host);
  }
  out.push(policy.requestIdHeader, ctx.requestId);
  const consumer = ctx.identity?.consumer;
  if (consumer) {
    out.push(policy.consumerNameHeader, consumer.name);
    if (consumer.groups.length > 0) out.push(policy.consumerGroupsHeader, consumer.groups.join(','));
  }
}

/** `name` is one of the names of a flat [name, value, ...] list. */
function namedIn(list: readonly string[], name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Copies an upstream response's headers minus hop-by-hop and hidden ones. */
export function clientResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  hidden: ReadonlySet<string>,
): Record<string, string | string[] | number | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  const extraHop = connectionTokens(headers.connection);
  for (const name in headers) {
    if (RESPONSE_SKIP.has(name) || hidden.has(name)) continue;
    if (extraHop !== null && extraHop.includes(name)) continue;
    out[name] = headers[name];
  }
  return out;
}
