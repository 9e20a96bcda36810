// The one answer to a bug in a hook or a terminal: 500 TP_INTERNAL for that request (the connection cut when
// the head is already out) and an event the runtime logs with the stack; the process never dies of it.
import { ERRORS } from '../errors.ts';
import { CHANNELS } from '../observability/events.ts';
import type { RequestContext } from '../request-context.ts';
import { sendGrpcStatus } from './grpc-status.ts';
import { PROBLEM_TYPE, problemBody } from './problem.ts';

const requestErrorChannel = CHANNELS.requestError;

export interface RequestErrorEvent {
  readonly ctx: RequestContext;
  readonly error: unknown;
}

export function failInternally(ctx: RequestContext, echoRequestId: string | null, error: unknown): void {
  if (requestErrorChannel.hasSubscribers) requestErrorChannel.publish({ ctx, error } satisfies RequestErrorEvent);
  ctx.errorCode = 'TP_INTERNAL';
  const res = ctx.res;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // Written without the chain's hooks: one of them may be what threw.
  const status = ERRORS.TP_INTERNAL.status;
  const headers: Record<string, string | number> = { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' };
  if (echoRequestId !== null) headers[echoRequestId] = ctx.requestId;
  if (ctx.grpc)
    return sendGrpcStatus(ctx, { status, headers: headers as Record<string, string> }, ERRORS.TP_INTERNAL.title);
  const body = problemBody('TP_INTERNAL', undefined, ctx.requestId);
  headers['content-length'] = Buffer.byteLength(body);
  ctx.status = status;
  ctx.bytesOut = Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(ctx.req.method === 'HEAD' ? undefined : body);
}
