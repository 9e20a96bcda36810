// gRPC-Web in front of a gRPC (HTTP/2) upstream, for routes with `protocol: grpc-web` (Envoy's grpc_web filter).
// The request goes upstream as application/grpc (text mode decoded from base64); the upstream's answer comes back
// as gRPC-Web: the frames as they are (base64 in text mode) and the status as a trailer frame in the body.
// Built on general seams: the request body replacement (ctx.requestBodyStream), an upstream override that adapts the
// head and adds the first body stage (before any transform-response plugin or compress), and the body's
// trailer sink (the trailers reach the stage instead of going out as HTTP trailers).
import { grpcWebContentType, grpcWebType, GrpcWebResponseEncoder, GrpcWebTextDecoder } from '../http/grpc-web.ts';
import { problemReply } from '../pipeline/problem.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';

/**
 * Prepares a gRPC-Web request for the forwarder; returns the Reply to answer instead when the request is not
 * gRPC-Web (415: this route speaks nothing else).
 */
export function grpcWebRequest(ctx: RequestContext): Reply | undefined {
  const headers = ctx.req.headers;
  const type = grpcWebType(headers['content-type']);
  if (type === null || ctx.req.method !== 'POST')
    return problemReply(
      'TP_GRPC_WEB_UNSUPPORTED',
      `send a POST with Content-Type application/grpc-web or application/grpc-web-text`,
      ctx.requestId,
    );
  // The answer is text when the request is, or when the client asks for it (an XHR that cannot read binary).
  const accept = headers.accept;
  const mode = type.mode === 'text' || accept?.includes('application/grpc-web-text') ? 'text' : 'binary';
  ctx.setRequestHeader('content-type', `application/grpc${type.suffix}`);
  ctx.setRequestHeader('te', 'trailers');
  // Browser-side headers mean nothing to the gRPC server.
  ctx.removeRequestHeader('x-grpc-web');
  ctx.removeRequestHeader('x-user-agent');
  if (type.mode === 'text') {
    // The decoded body has another length (HTTP/2 upstreams frame it themselves).
    ctx.removeRequestHeader('content-length');
    const decoder = new GrpcWebTextDecoder();
    ctx.req.pipe(decoder);
    ctx.requestBodyStream = decoder;
  }
  ctx.onUpstream((_status, head) => {
    if (head !== null) adaptHead(head, mode);
    return undefined;
  });
  return undefined;
}

/** A gRPC answer becomes gRPC-Web; anything else (an HTTP error from a server that is not gRPC) is left alone. */
function adaptHead(head: ResponseHead, mode: 'binary' | 'text'): void {
  const type = head.headers['content-type'];
  if (typeof type !== 'string' || !type.startsWith('application/grpc') || head.body === null) return;
  const rest = type.slice('application/grpc'.length).split(';', 1)[0]!;
  head.headers['content-type'] = grpcWebContentType(mode, rest.startsWith('+') ? rest : '');
  delete head.headers['content-length'];
  const encoder = new GrpcWebResponseEncoder(mode);
  head.body.transform(encoder);
  head.body.trailerSink = encoder.takeTrailers;
}
