// The request body held whole, for plugins that rewrite it (xml, json-transform): read once within the route's
// maxBodySize, kept on the context so the next plugin rewrites the previous one's result, and forwarded instead of
// the client's stream (the forwarder sends `ctx.requestBody`, which a retry may resend).
import { Readable } from 'node:stream';
import type { Reply, RequestContext } from '../request-context.ts';
import { problemReply } from './problem.ts';

/** Whether the client sends a body at all (HTTP/1.1 framing, or an HTTP/2 stream left open after its head). */
export function hasRequestBody(ctx: RequestContext): boolean {
  if (ctx.requestBody !== null) return true;
  const h = ctx.req.headers;
  const length = h['content-length'];
  if (h['transfer-encoding'] !== undefined) return true;
  if (length !== undefined) return length !== '0';
  return (ctx.req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
}

/**
 * The body, whole: the one a plugin already rewrote, or the client's read up to `max` bytes. A Reply (413) when it
 * is larger: the rest is not read, so the connection is not reused.
 */
export function readRequestBody(ctx: RequestContext, max: number): Buffer | Promise<Buffer | Reply> {
  if (ctx.requestBody !== null) return ctx.requestBody;
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        ctx.res.shouldKeepAlive = false;
        resolve(problemReply('TP_BODY_TOO_LARGE', `the body may be at most ${max} bytes`, ctx.requestId));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      req.off('error', reject);
      ctx.bytesIn = size;
      resolve(Buffer.concat(chunks, size));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

/** Replaces the body sent upstream, with the headers that describe it. */
export function replaceRequestBody(ctx: RequestContext, body: Buffer, contentType: string | null): void {
  ctx.requestBody = body;
  setRequestHeaderOnce(ctx, 'content-length', String(body.length));
  if (contentType !== null) setRequestHeaderOnce(ctx, 'content-type', contentType);
}

/** Sets a request header, replacing a value an earlier plugin set (two plugins may each rewrite the body). */
export function setRequestHeaderOnce(ctx: RequestContext, name: string, value: string): void {
  const set = ctx.setRequestHeaders;
  if (set !== null) {
    for (let i = 0; i < set.length; i += 2) {
      if (set[i] === name) {
        set[i + 1] = value;
        return;
      }
    }
  }
  ctx.setRequestHeader(name, value);
}

/** Sees the request body as it goes upstream, chunk by chunk, without slowing it (the mirror's copy). */
export interface RequestBodyTap {
  write(chunk: Buffer): void;
  /** The whole body was read. Not called when it was not (the client left, or the body was never read). */
  end(): void;
}

/**
 * Puts `tap` on the body that goes upstream: the stream the forwarder sends (`ctx.requestBodyStream`) becomes one
 * that passes each chunk on and to the tap. It pulls from its source only once something reads it, so a body
 * nobody reads (a local answer, a plugin that reads the client's stream itself) is left alone and the tap ends
 * never. Backpressure is the reader's: the tap must not hold chunks it cannot afford (it copies within a bound).
 */
export function tapRequestBody(ctx: RequestContext, tap: RequestBodyTap): void {
  const source: Readable = ctx.requestBodyStream ?? ctx.req;
  let started = false;
  const out: Readable = new Readable({
    read() {
      if (started) {
        source.resume();
        return;
      }
      started = true;
      source.on('data', (chunk: Buffer) => {
        tap.write(chunk);
        if (!out.push(chunk)) source.pause();
      });
      source.once('end', () => {
        tap.end();
        out.push(null);
      });
      source.once('error', (err) => out.destroy(err));
    },
    destroy(err, done) {
      // The reader gave up (undici aborted the try): the client's stream is theirs to close, as without a tap.
      if (!source.readableEnded) source.pause();
      done(err);
    },
  });
  ctx.requestBodyStream = out;
}
