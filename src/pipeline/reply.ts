// Writes a response the gateway makes itself (respond, redirect, a plugin's answer, a cache hit, an error),
// after the chain has finished its head.
import type { ErrorCode } from '../errors.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';
import { finishHead, type Chain } from './chain.ts';
import { sendGrpcStatus } from './grpc-status.ts';
import type { ErrorPages } from './error-pages.ts';
import { failInternally } from './guard.ts';
import { PROBLEM_TYPE, problemReply } from './problem.ts';

export function sendReply(ctx: RequestContext, chain: Chain, reply: Reply): void {
  const res = ctx.res;
  // Every answer the gateway makes carries its code into the log, whoever made it (a plugin's 401, 403, 429).
  if (reply.code !== undefined) {
    ctx.errorCode = reply.code;
    if (chain.errorPages != null && !ctx.grpc) reply = asErrorPage(ctx, chain.errorPages, reply);
  }
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // A client that asked for 100-continue and got a local answer instead did not send its body: the
  // connection cannot be reused, or its next bytes would be taken as that body.
  if (ctx.req.headers.expect !== undefined && ctx.target === '') res.shouldKeepAlive = false;
  const body = reply.body ?? '';
  const head: ResponseHead = { status: reply.status, headers: { ...reply.headers }, body: null };
  try {
    finishHead(chain, ctx, head);
  } catch (err) {
    return failInternally(ctx, chain.echoRequestId, err);
  }
  if (ctx.grpc && head.status >= 400) {
    const title =
      typeof body === 'string' && body.startsWith('{') ? (safeTitle(body) ?? String(head.status)) : String(head.status);
    return sendGrpcStatus(ctx, { status: head.status, headers: head.headers as Record<string, string> }, title);
  }
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  // 304 and 204 have no content; a Content-Length there would describe the stored representation (RFC 9110 8.6).
  if (head.status !== 304 && head.status !== 204) head.headers['content-length'] = length;
  ctx.bytesOut = length;
  res.writeHead(head.status, head.headers);
  res.end(ctx.req.method === 'HEAD' ? undefined : body);
}

export function sendProblem(
  ctx: RequestContext,
  chain: Chain,
  code: ErrorCode,
  detail?: string,
  extraHeaders?: Record<string, string | string[]>,
): void {
  ctx.errorCode = code;
  sendReply(ctx, chain, problemReply(code, detail, ctx.requestId, extraHeaders));
}

/** A gateway error (problem+json) as the configured HTML page, for a client that prefers HTML; else as it is. */
function asErrorPage(ctx: RequestContext, pages: ErrorPages, reply: Reply): Reply {
  const headers = reply.headers;
  if (headers?.['content-type'] !== PROBLEM_TYPE) return reply;
  const page = pages.pageFor(reply.status, ctx.req.headers.accept);
  if (page === undefined) return reply;
  // Its other fields stay (Retry-After, Allow, WWW-Authenticate); the answer depends on Accept now.
  return { ...reply, headers: { ...headers, 'content-type': 'text/html; charset=utf-8', vary: 'Accept' }, body: page };
}

function safeTitle(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { title?: string }).title;
  } catch {
    return undefined;
  }
}
