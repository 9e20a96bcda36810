// Checks of a client's request head before it is routed: what a backend could read differently from the gateway
// (two Hosts, a Host that is not a host, underscore names CGI reads as dashes) is refused or dropped here, once.
import { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../errors.ts';
import type { RequestContext } from '../request-context.ts';

/** What to do with header names containing `_` (CGI maps `X_Auth_User` and `X-Auth-User` to one variable). */
export type UnderscoreHeaders = 'reject' | 'drop' | 'allow';

/**
 * RFC 9110 §7.2 / RFC 3986 §3.2.2: a host (reg-name or IP literal) and an optional port up to 65535; no userinfo,
 * no spaces, no path, no comma (two Hosts an intermediary joined). Empty is allowed (RFC 9112 §3.2: a target
 * without authority; an HTTP/1.0 request without Host routes to host-less routes).
 */
const HOST =
  /^(?:[A-Za-z0-9._~!$&'()*+;=%-]+|\[[0-9A-Fa-f:.]+\])?(?::(?:[0-5]?[0-9]{0,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$/;

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

/** Why a request is refused before routing: the answer's code and detail. */
export interface HeadRefusal {
  readonly code: ErrorCode;
  readonly detail: string;
}

/**
 * What Node's parser lets through but a backend or another proxy could frame differently, and the size limits
 * Node has no option for. Returns null for an ordinary request (no allocation on that path).
 */
export function refuseHead(
  req: IncomingMessage,
  limits: { readonly maxUriLength: number; readonly maxHeaderCount: number },
): HeadRefusal | null {
  // A reverse proxy opens no tunnels to arbitrary authorities (and `CONNECT /` is not even a CONNECT).
  if (req.method === 'CONNECT') return { code: 'TP_METHOD_NOT_ALLOWED', detail: 'CONNECT is not served' };
  if ((req.url?.length ?? 0) > limits.maxUriLength) {
    return { code: 'TP_URI_TOO_LONG', detail: `the request target may be at most ${limits.maxUriLength} bytes` };
  }
  // RFC 9112 §3.2: a fragment is never sent; a backend that cuts it would read another path than was routed.
  if (req.url !== undefined && req.url.indexOf('#') !== -1) {
    return { code: 'TP_BAD_REQUEST', detail: 'the request target has a fragment (#)' };
  }
  if (!(req instanceof IncomingMessage)) return null; // HTTP/2: nghttp2 has framed and limited it
  // llhttp reads `HTTP/2.0`, and `GET /` followed by headers as HTTP/0.9.
  if (req.httpVersionMajor !== 1) {
    return { code: 'TP_BAD_REQUEST', detail: `HTTP/${req.httpVersion} is not served over HTTP/1` };
  }
  // Node keeps one more than maxHeaderCount (its maxHeadersCount) and drops the rest.
  if (req.rawHeaders.length > 2 * limits.maxHeaderCount) {
    return {
      code: 'TP_HEADERS_TOO_LARGE',
      detail: `a request may carry at most ${limits.maxHeaderCount} header fields`,
    };
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused.
  if (req.httpVersionMinor === 1 && req.headers.host === undefined) {
    return { code: 'TP_BAD_REQUEST', detail: 'an HTTP/1.1 request needs a Host header' };
  }
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing. Any coding besides chunked (`gzip,
    // chunked`, `,chunked`) would reach the backend decoded by nobody: only a lone `chunked` is framed here.
    if (req.httpVersionMinor === 0) {
      return { code: 'TP_BAD_REQUEST', detail: 'Transfer-Encoding is not allowed in an HTTP/1.0 request' };
    }
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') {
      return { code: 'TP_BAD_REQUEST', detail: 'the only transfer coding accepted is a single chunked' };
    }
  }
  return null;
}
