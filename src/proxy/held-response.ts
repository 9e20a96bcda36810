// An upstream response held back from the client because a plugin rewrites its body whole (ResponseBody.whole):
// the body is collected up to the route's maxBodySize, the stages run in order, and only then is the head written,
// with the Content-Length of what the client gets. Every other response streams.
import type { ErrorCode } from '../errors.ts';
import type { Reply, ResponseHead, WholeBodyStage } from '../request-context.ts';

export class HeldResponse {
  readonly head: ResponseHead;
  readonly statusMessage: string | undefined;
  private readonly max: number;
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(head: ResponseHead, statusMessage: string | undefined, max: number) {
    this.head = head;
    this.statusMessage = statusMessage;
    this.max = max;
  }

  /** False once the body is larger than the bound (nothing more is kept). */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.max) {
      this.chunks = [];
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  /**
   * Runs the whole-body stages on what was collected. Sets Content-Length when no streaming stage follows (one
   * that does, compress, already removed it). A stage's throw is the answer's detail (the parser's message); a
   * stage's Reply is the answer as it is (the later stages do not run).
   */
  finish(stages: readonly WholeBodyStage[]): Buffer | Reply | { code: ErrorCode; detail: string } {
    let body: Buffer = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    try {
      for (const stage of stages) {
        const out = stage(body);
        if (!Buffer.isBuffer(out)) return out;
        body = out;
      }
    } catch (err) {
      return { code: 'TP_UPSTREAM_BAD_BODY', detail: err instanceof Error ? err.message : String(err) };
    }
    const h = this.head.headers;
    if (this.head.body?.stages === null) h['content-length'] = body.length;
    else delete h['content-length'];
    return body;
  }

  get tooLarge(): { code: ErrorCode; detail: string } {
    return { code: 'TP_UPSTREAM_BODY_TOO_LARGE', detail: `the response body may be at most ${this.max} bytes` };
  }
}
