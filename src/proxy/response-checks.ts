// What the forwarder checks in an upstream's response before relaying it, and how it cuts one it cannot finish.
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';
import type { RequestContext } from '../request-context.ts';

const H2_INTERNAL_ERROR = h2constants.NGHTTP2_INTERNAL_ERROR;

/** A response the forwarder refuses (502 TP_UPSTREAM_BAD_RESPONSE), given to undici's abort. */
export class BadResponseError extends Error {
  readonly code = 'TP_UPSTREAM_BAD_RESPONSE';
}

/**
 * Ends a response that cannot be completed. An HTTP/2 stream is reset with INTERNAL_ERROR: destroyed without an
 * error, Node would reset it with NO_ERROR, which a client takes for the end of the body.
 */
export function cut(res: RequestContext['res']): void {
  const stream = (res as { stream?: ServerHttp2Stream }).stream;
  if (stream !== undefined) stream.close(H2_INTERNAL_ERROR);
  else res.destroy();
}

/** Bytes of header names and values, as undici counts them for HTTP/1.1. */
export function headSize(headers: Record<string, string | string[] | undefined>): number {
  let n = 0;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'string') n += name.length + v.length;
    else for (const one of v) n += name.length + one.length;
  }
  return n;
}

export function isChunkedOnly(te: string | string[]): boolean {
  return typeof te === 'string' && (te === 'chunked' || te.trim().toLowerCase() === 'chunked');
}
