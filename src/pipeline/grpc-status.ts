// On gRPC routes the gateway's own errors must be gRPC statuses, which gRPC clients understand, not
// problem+json bodies they cannot read: HTTP 200, content-type application/grpc, no message, and grpc-status /
// grpc-message as trailers. The HTTP → gRPC mapping follows gRPC's doc "HTTP to gRPC Status Code Mapping",
// with the gateway's meanings: 429 and 413 are RESOURCE_EXHAUSTED, 504 and 408 DEADLINE_EXCEEDED.
import { grpcWebContentType, grpcWebType, trailerFrame, type GrpcWebMode } from '../http/grpc-web.ts';
import type { Reply, RequestContext } from '../request-context.ts';

export const GRPC = {
  OK: 0,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export function grpcStatusOf(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GRPC.INTERNAL;
    case 401:
      return GRPC.UNAUTHENTICATED;
    case 403:
      return GRPC.PERMISSION_DENIED;
    case 404:
      return GRPC.UNIMPLEMENTED;
    case 408:
    case 504:
      return GRPC.DEADLINE_EXCEEDED;
    case 413:
    case 429:
      return GRPC.RESOURCE_EXHAUSTED;
    case 502:
    case 503:
      return GRPC.UNAVAILABLE;
    default:
      return httpStatus >= 500 ? GRPC.INTERNAL : GRPC.UNKNOWN;
  }
}

/** Writes `reply` (an error the gateway made) as a gRPC status; the problem's title becomes grpc-message. */
export function sendGrpcStatus(ctx: RequestContext, reply: Reply, title: string): void {
  const res = ctx.res;
  const code = grpcStatusOf(reply.status);
  const web = grpcWebType(ctx.req.headers['content-type']);
  if (web !== null) return sendGrpcWebStatus(ctx, reply, code, title, web.mode, web.suffix);
  const headers: Record<string, string | string[]> = { 'content-type': 'application/grpc' };
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
    if (name === 'retry-after' || name === 'www-authenticate' || name.startsWith('ratelimit')) headers[name] = value;
  }
  ctx.status = reply.status;
  res.writeHead(200, headers);
  // grpc-message is percent-encoded (gRPC spec: "Status-Message").
  res.addTrailers({ 'grpc-status': String(code), 'grpc-message': encodeURIComponent(title) });
  res.end();
}

/**
 * gRPC-Web clients (browsers) cannot read HTTP trailers: the status goes in the body's trailer frame. The head
 * keeps what the response hooks set (CORS above all, or the browser could not read the answer).
 */
function sendGrpcWebStatus(
  ctx: RequestContext,
  reply: Reply,
  code: number,
  title: string,
  mode: GrpcWebMode,
  suffix: string,
): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
    if (name !== 'content-type' && name !== 'content-length' && value !== undefined) headers[name] = value;
  }
  headers['content-type'] = grpcWebContentType(mode, suffix);
  const frame = trailerFrame({ 'grpc-status': String(code), 'grpc-message': encodeURIComponent(title) });
  const body = mode === 'text' ? Buffer.from(frame.toString('base64'), 'latin1') : frame;
  headers['content-length'] = String(body.length);
  ctx.status = reply.status;
  ctx.bytesOut = body.length;
  ctx.res.writeHead(200, headers);
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
}
