// Ketama-style consistent hashing (NGINX `hash ... consistent`): each target owns 160 points per unit of
// weight on a 32-bit ring, at hash32(`${key}#${i}`); a request goes to the first point at or after the hash
// of its key. Adding or removing one of N targets moves about 1/N of the keys and leaves the rest in place.
import {
  hash32,
  hex32,
  NO_TARGET,
  weightGcd,
  type BalancedTarget,
  type Balancer,
  type BalancerPeek,
} from './balancer.ts';
import { RoundRobinBalancer } from './round-robin.ts';

const POINTS_PER_WEIGHT = 160;
// Bounds the ring (memory and the sort in update) when weights are large and unequal. A target keeps a
// prefix of its points when the per-unit count shrinks, so even then most keys stay.
const MAX_POINTS = 1 << 17;
// Ring entries are sorted as one float: position * 2^21 + target index (exact below 2^53).
const SHIFT = 2 ** 21;

export class ConsistentHashBalancer<T extends BalancedTarget = BalancedTarget> implements Balancer<T> {
  private targets: readonly T[] = [];
  private positions = new Uint32Array(0);
  private owners = new Uint32Array(0); // index into targets, for each position
  private readonly fallback = new RoundRobinBalancer<T>();

  update(targets: readonly T[]): void {
    this.targets = targets.slice();
    this.fallback.update(targets);
    const g = weightGcd(targets);
    let units = 0;
    for (const t of targets) units += t.weight / g;
    const perUnit = Math.max(1, Math.min(POINTS_PER_WEIGHT, Math.floor(MAX_POINTS / Math.max(units, 1))));
    let size = 0;
    for (const t of targets) size += (t.weight / g) * perUnit;
    const ring = new Float64Array(size);
    let k = 0;
    targets.forEach((t, idx) => {
      const points = (t.weight / g) * perUnit;
      for (let i = 0; i < points; i++) ring[k++] = hash32(`${t.key}#${i}`) * SHIFT + idx;
    });
    ring.sort(); // numeric; equal positions (rare) order by index, which makes no practical difference
    this.positions = new Uint32Array(size);
    this.owners = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      const idx = ring[i]! % SHIFT;
      this.owners[i] = idx;
      this.positions[i] = (ring[i]! - idx) / SHIFT;
    }
  }

  peek(hash: string): BalancerPeek<T> {
    const n = this.positions.length;
    if (n === 0) return NO_TARGET;
    if (hash === '') {
      const next = this.fallback.peek(hash);
      return { target: next.target, reason: `no hash key: round robin, ${next.reason}` };
    }
    const h = hash32(hash);
    const at = this.pointAt(h);
    return {
      target: this.targets[this.owners[at]!],
      reason: `hash ${hex32(h)} -> ring point ${hex32(this.positions[at]!)} (${at + 1} of ${n})`,
    };
  }

  /** The first ring position at or after `h` (wrapping to 0). */
  private pointAt(h: number): number {
    const n = this.positions.length;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === n ? 0 : lo;
  }

  pick(hash: string, avoid?: T): T | undefined {
    const n = this.positions.length;
    if (n === 0) return undefined;
    if (hash === '') return this.fallback.pick(hash, avoid); // nothing to be consistent about
    let lo = this.pointAt(hash32(hash));
    let t = this.targets[this.owners[lo]!]!;
    // A retry walks on along the ring to the next target's point, as a removal of `avoid` would send it.
    for (let k = 0; k < n && t === avoid; k++) {
      if (++lo === n) lo = 0;
      t = this.targets[this.owners[lo]!]!;
    }
    return t;
  }
}
