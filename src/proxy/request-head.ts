// Checks of a client's request head before it is routed: what a backend could read differently from the gateway
// (two Hosts, a Host that is not a host, underscore names CGI reads as dashes) is refused or dropped here, once.
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../request-context.ts';

/** What to do with header names containing `_` (CGI maps `X_Auth_User` and `X-Auth-User` to one variable). */
export type UnderscoreHeaders = 'reject' | 'drop' | 'allow';

/**
 * RFC 9110 §7.2 / RFC 3986 §3.2.2: a host (reg-name or IP literal) and an optional port; no userinfo, no spaces,
 * no path. Empty is allowed (an HTTP/1.0 request without Host routes to host-less routes).
 */
const HOST = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])?(?::[0-9]{0,5})?$/;

/**
 * Validates the head and drops underscore headers when asked. Returns why the request is refused (answered 400
 * TP_BAD_REQUEST), or null. One pass over the raw header list, which also sees the repeats Node folds away.
 */
export function checkRequestHead(ctx: RequestContext, underscores: UnderscoreHeaders): string | null {
  const req: IncomingMessage = ctx.req;
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (underscores !== 'allow' && name.indexOf('_') !== -1) {
      if (underscores === 'reject') return `the header name "${name}" contains an underscore`;
      ctx.removeRequestHeader(name.toLowerCase());
    }
  }
  if (hosts > 1) return 'the request has more than one Host header';
  const host = req.headers.host;
  if ((host !== undefined && !HOST.test(host)) || (ctx.host !== host && !HOST.test(ctx.host))) {
    return 'the Host header is not a host name with an optional port';
  }
  const authority = req.headers[':authority'];
  // RFC 9113 §8.3.1: a Host beside :authority must name the same thing.
  if (authority !== undefined && host !== undefined && host.toLowerCase() !== String(authority).toLowerCase()) {
    return 'the Host header differs from :authority';
  }
  return null;
}
