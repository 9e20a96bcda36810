// The load-balancing seam: small pure classes that see only the few fields of a target they need,
// so they are unit-tested with plain objects and know nothing of connections or config.

/** What a balancer needs to know of a target. The real Target (src/upstream/target.ts) has these fields. */
export interface BalancedTarget {
  readonly key: string; // stable identity (url + settings); use it for hashing, never the object identity
  readonly weight: number; // integer >= 1
  active: number; // requests in flight right now (maintained by the caller)
}

/** What `pick` would choose now, and why, found without changing anything (`turnpike explain`). */
export interface BalancerPeek<T> {
  /** Undefined when there is no target, or when the choice is a random draw (`chances` then gives the odds). */
  readonly target: T | undefined;
  readonly reason: string;
  readonly chances?: readonly { readonly target: T; readonly share: number }[];
}

export interface Balancer<T extends BalancedTarget = BalancedTarget> {
  /** Sets the targets to choose from; called once at build and again whenever health or backup failover changes the usable set. May be empty. Do the expensive work (rings, tables) here, never in pick. */
  update(targets: readonly T[]): void;
  /** Picks a target or undefined when there are none. `hash` is the request's hash key (consistent-hash, ip-hash; '' when none). `avoid`: a target a retry should not reuse when another target exists. */
  pick(hash: string, avoid?: T): T | undefined;
  /** What `pick(hash)` would choose now, without moving a rotation, drawing a random number or learning anything. */
  peek(hash: string): BalancerPeek<T>;
  /** Reports a finished exchange with its latency in ms (and whether it failed), so latency-aware balancers learn. Optional. */
  observe?(target: T, latencyMs: number, failed: boolean): void;
}

export interface RandomOptions {
  /** Uniform [0, 1) source (default Math.random); injectable so tests are deterministic. */
  readonly random?: () => number;
}

/**
 * 32-bit FNV-1a over the UTF-16 code units, then murmur3's finaliser: FNV-1a alone spreads near-identical
 * strings ("a#1", "a#2") poorly, and the finaliser makes every input bit reach every output bit. No allocation.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const NO_TARGET: BalancerPeek<never> = { target: undefined, reason: 'no usable target' };

/** `3:1`: the weights of the targets, in their order. */
export function weightsOf(targets: readonly BalancedTarget[]): string {
  return targets.map((t) => t.weight).join(':');
}

/** 32-bit hash as fixed-width hex, for explanations. */
export function hex32(h: number): string {
  return `0x${h.toString(16).padStart(8, '0')}`;
}

/** Greatest common divisor of the weights, so weights 100:100 cost the tables no more than 1:1. */
export function weightGcd(targets: readonly BalancedTarget[]): number {
  let g = 0;
  for (const t of targets) {
    let a = t.weight;
    while (a) {
      const r = g % a;
      g = a;
      a = r;
    }
  }
  return g || 1;
}

/** Targets sorted by key: hash-based balancers must map the same set the same way whatever order it came in. */
export function byKey<T extends BalancedTarget>(targets: readonly T[]): T[] {
  return targets.slice().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
