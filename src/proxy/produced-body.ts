// A whole body a terminal made itself (an aggregate's merged answer) sent as a terminal's answer, the way the
// forwarder sends an upstream's: upstream overrides are asked first (a cache filling, or serving a 304's stored
// body), then the response phases may add body stages (a transform, compress) and taps (the cache storing what
// the client gets). A local reply (sendReply) gets header hooks only; this one goes through the body stages.
import type { Transform } from 'node:stream';
import { finishHead, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { sendReply } from '../pipeline/reply.ts';
import { ResponseBody, type BodyTap, type RequestContext, type ResponseHead } from '../request-context.ts';
import { cut } from './response-checks.ts';

export function sendProduced(
  ctx: RequestContext,
  chain: Chain,
  status: number,
  headers: ResponseHead['headers'],
  body: Buffer,
): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  headers['content-length'] = body.length;
  const head: ResponseHead = {
    status,
    headers,
    body: chain.hasResponseHooks || ctx.upstreamOverrides !== null ? new ResponseBody() : null,
  };
  if (ctx.upstreamOverrides !== null) {
    const reply = ctx.overrideUpstream(status, head);
    if (reply !== undefined) return sendReply(ctx, chain, reply);
  }
  try {
    finishHead(chain, ctx, head);
  } catch (err) {
    return failInternally(ctx, chain.echoRequestId, err);
  }
  ctx.bytesOut = body.length;
  if (ctx.req.method === 'HEAD' || head.status === 204 || head.status === 304) {
    res.writeHead(head.status, head.headers);
    res.end();
    return;
  }
  const stages = head.body?.stages ?? null;
  const taps = head.body?.taps ?? null;
  if (stages === null) {
    res.writeHead(head.status, head.headers);
    if (taps !== null)
      for (const tap of taps) {
        tap.write(body);
        tap.end();
      }
    res.end(body);
    return;
  }
  // A stage changes the body: the length it had is no longer known (compress drops it; a transform must too).
  if (head.headers['content-length'] === body.length) delete head.headers['content-length'];
  res.writeHead(head.status, head.headers);
  pipeStages(ctx, stages, taps).end(body);
}

/** Stages in the order plugins added them; the last one writes to the client, with backpressure. */
function pipeStages(ctx: RequestContext, stages: Transform[], taps: BodyTap[] | null): Transform {
  const res = ctx.res;
  for (let i = 0; i < stages.length - 1; i++) stages[i]!.pipe(stages[i + 1]!);
  const last = stages[stages.length - 1]!;
  last.on('data', (c: Buffer) => {
    if (taps !== null) for (const tap of taps) tap.write(c);
    if (!res.write(c)) {
      last.pause();
      res.once('drain', () => last.resume());
    }
  });
  last.once('end', () => {
    if (taps !== null && !res.destroyed) for (const tap of taps) tap.end();
    res.end();
  });
  for (const stage of stages) stage.once('error', () => cut(res));
  res.once('close', () => {
    for (const stage of stages) stage.destroy();
  });
  return stages[0]!;
}
