// Trace and span ids from a pool of crypto random bytes: the SDK's own generator writes Math.random words into a
// buffer for each id, which costs twice as much on the path every traced request takes (90 % of them unsampled).
// The pool is turned into hex once per refill; an id is a slice of that string (no native call per id).
import { randomFillSync } from 'node:crypto';
import type { IdGenerator } from '@opentelemetry/sdk-trace';

const POOL_BYTES = 4096;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export class PooledIdGenerator implements IdGenerator {
  private readonly pool = Buffer.allocUnsafe(POOL_BYTES);
  private poolHex = '';
  private at = POOL_BYTES;
  /**
   * The four 32-bit words of the last trace id drawn, XORed: what the SDK's TraceIdRatioBasedSampler compares
   * with ratio x 2^32 (it parses the hex back into these words), read here from the bytes themselves.
   */
  lastTraceWord = 0;

  private hex(bytes: number): string {
    if (this.at + bytes > POOL_BYTES) {
      randomFillSync(this.pool);
      this.poolHex = this.pool.toString('hex');
      this.at = 0;
    }
    const id = this.poolHex.slice(this.at * 2, (this.at + bytes) * 2);
    this.at += bytes;
    return id;
  }

  generateTraceId(): string {
    const pool = this.pool;
    const at = this.at + 16 > POOL_BYTES ? 0 : this.at; // where hex() takes the bytes from (it refills at 0)
    const id = this.hex(16);
    this.lastTraceWord =
      (pool.readUInt32BE(at) ^ pool.readUInt32BE(at + 4) ^ pool.readUInt32BE(at + 8) ^ pool.readUInt32BE(at + 12)) >>>
      0;
    return id === ZERO_TRACE ? this.generateTraceId() : id; // all zeros is the invalid id (W3C)
  }

  generateSpanId(): string {
    const id = this.hex(8);
    return id === ZERO_SPAN ? this.generateSpanId() : id;
  }
}
