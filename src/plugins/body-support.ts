// What the body-transform plugins (xml, json-transform) share: which bodies they take, the request body held
// whole and replaced, and a response body rewritten whole (the terminal holds it within maxBodySize).
import { problemReply } from '../pipeline/problem.ts';
import { hasRequestBody, readRequestBody, replaceRequestBody, setRequestHeaderOnce } from '../pipeline/request-body.ts';
import type { Reply, RequestContext, ResponseBody, ResponseHead } from '../request-context.ts';

export const isJsonType = (type: string | undefined): boolean =>
  type === undefined || /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type);
export const isXmlType = (type: string | undefined): boolean =>
  type === undefined || /^(application|text)\/([\w.-]+\+)?xml\s*(;|$)/i.test(type);

/** The request's Content-Type as it goes upstream (an earlier plugin may have rewritten the body). */
export function requestContentType(ctx: RequestContext): string | undefined {
  const set = ctx.setRequestHeaders;
  if (set !== null) for (let i = set.length - 2; i >= 0; i -= 2) if (set[i] === 'content-type') return set[i + 1];
  const type = ctx.req.headers['content-type'];
  return type === undefined || type === '' ? undefined : type;
}

/** What a request body rewrite returns: the new body and, when it changes, its Content-Type. */
export interface Rewritten {
  readonly body: Buffer;
  readonly type: string | null;
}

/**
 * Rewrites the request body when there is one of a type `takes` accepts: 413 past maxBodySize, 400 with the
 * parser's message when `rewrite` throws.
 */
export function rewriteRequest(
  ctx: RequestContext,
  max: number,
  takes: (type: string | undefined) => boolean,
  rewrite: (body: Buffer) => Rewritten,
): undefined | Promise<Reply | undefined> {
  if (!hasRequestBody(ctx) || !takes(requestContentType(ctx))) return undefined;
  const apply = (body: Buffer | Reply): Reply | undefined => {
    if (!Buffer.isBuffer(body)) return body;
    let out: Rewritten;
    try {
      out = rewrite(body);
    } catch (err) {
      return problemReply('TP_BAD_REQUEST_BODY', err instanceof Error ? err.message : String(err), ctx.requestId);
    }
    replaceRequestBody(ctx, out.body, out.type);
    return undefined;
  };
  const body = readRequestBody(ctx, max);
  return Buffer.isBuffer(body) ? Promise.resolve(apply(body)) : body.then(apply);
}

/**
 * A response body the plugin will rewrite whole, or null: only a body a terminal produces, with content, of a
 * type `takes` accepts. Its validator turns weak (new bytes) and it is no longer served by ranges.
 */
export function rewritableBody(
  ctx: RequestContext,
  head: ResponseHead,
  takes: (type: string | undefined) => boolean,
): ResponseBody | null {
  const body = head.body;
  if (body === null || ctx.req.method === 'HEAD') return null;
  if (head.status < 200 || head.status === 204 || head.status === 206 || head.status === 304) return null;
  const h = head.headers;
  if (h['content-length'] !== undefined && Number(h['content-length']) === 0) return null;
  const type = h['content-type'];
  if (!takes(type === undefined ? undefined : String(type))) return null;
  const coding = h['content-encoding'];
  if (coding !== undefined && String(coding) !== 'identity') {
    // Encoded although asked for identity: the stage would parse compressed bytes.
    body.rewrite(() => {
      throw new Error(`the body is encoded (${String(coding)}) and cannot be transformed`);
    });
    return null;
  }
  const etag = h.etag;
  if (typeof etag === 'string' && !etag.startsWith('W/')) h.etag = `W/${etag}`;
  delete h['accept-ranges'];
  return body;
}

/** Before a response is rewritten: the upstream is asked for a whole, unencoded body. */
export function askForWholeBody(ctx: RequestContext): void {
  setRequestHeaderOnce(ctx, 'accept-encoding', 'identity');
  ctx.removeRequestHeader('range');
  ctx.removeRequestHeader('if-range');
}
