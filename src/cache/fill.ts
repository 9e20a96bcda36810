// Collects a response body while it streams to the client, up to maxObjectSize; a larger one is let go (the
// response passes through, nothing is stored).
import type { BodyTap } from '../request-context.ts';

export class Fill implements BodyTap {
  private chunks: Buffer[] = [];
  private size = 0;
  private over = false;
  private readonly max: number;
  private readonly complete: (body: Buffer) => void;
  private readonly abandon: () => void;

  /** `abandon` runs when the body outgrows `max` (nothing will be stored). */
  constructor(max: number, complete: (body: Buffer) => void, abandon: () => void) {
    this.max = max;
    this.complete = complete;
    this.abandon = abandon;
  }

  write(chunk: Buffer): void {
    if (this.over) return;
    this.size += chunk.length;
    if (this.size > this.max) {
      this.over = true;
      this.chunks = [];
      this.abandon();
      return;
    }
    this.chunks.push(chunk);
  }

  end(): void {
    // Always one copy: chunks may be views into larger socket buffers that must not stay alive in the cache.
    if (!this.over) this.complete(Buffer.concat(this.chunks, this.size));
    this.chunks = [];
  }
}
