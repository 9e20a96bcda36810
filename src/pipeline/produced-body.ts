// A response whose body a terminal makes itself (not the forwarder, which has its own copy of this for speed):
// the head goes through the response phases (finishHead), then the body through the stages and taps plugins
// added (a transform, then compress; the cache's tap sees what the client gets).
import { PassThrough, type Writable } from 'node:stream';
import { ResponseBody, type RequestContext, type ResponseHead } from '../request-context.ts';
import { finishHead, type Chain } from './chain.ts';
import { failInternally } from './guard.ts';

/**
 * Writes the head and returns where to write the body (end it to end the response), or null when a response hook
 * failed (the 500 is sent). The caller counts `ctx.bytesOut` and waits for 'drain' when a write returns false.
 */
export function openProducedBody(
  ctx: RequestContext,
  chain: Chain,
  status: number,
  headers: ResponseHead['headers'],
): Writable | null {
  const head: ResponseHead = { status, headers, body: chain.hasResponseHooks ? new ResponseBody() : null };
  try {
    finishHead(chain, ctx, head);
  } catch (err) {
    failInternally(ctx, chain.echoRequestId, err);
    return null;
  }
  const res = ctx.res;
  res.writeHead(head.status, head.headers);
  const body = head.body;
  if (body === null || (body.stages === null && body.taps === null)) return res;
  const stages = body.stages ?? [new PassThrough()];
  for (let i = 0; i < stages.length - 1; i++) stages[i]!.pipe(stages[i + 1]!);
  const last = stages[stages.length - 1]!;
  const taps = body.taps;
  if (taps !== null) {
    last.on('data', (c: Buffer) => {
      for (const t of taps) t.write(c);
    });
    last.once('end', () => {
      if (!res.destroyed) for (const t of taps) t.end();
    });
  }
  last.pipe(res);
  for (const stage of stages) stage.once('error', () => res.destroy());
  res.once('close', () => {
    for (const stage of stages) stage.destroy();
  });
  return stages[0]!;
}
