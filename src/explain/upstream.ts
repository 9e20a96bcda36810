// The upstream part of an explanation: each target's state (weight, health, ejection, drain, in flight) and the
// target the pool would pick for this request, and why, from UpstreamPool.wouldPick (nothing moves).
import type { RequestContext } from '../request-context.ts';
import { hashSourceName } from '../upstream/hash-key.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import type { Target } from '../upstream/target.ts';

export interface TargetExplanation {
  /** The target's origin (never its userinfo). */
  readonly url: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly drained: boolean;
  readonly inFlight: number;
  /** Among the targets picks choose from now. */
  readonly inRotation: boolean;
  readonly picked: boolean;
  /** A random balancer's odds for it. */
  readonly chance?: number;
}

export interface UpstreamExplanation {
  readonly name: string;
  readonly balance: string;
  readonly breaker: string | null;
  readonly sticky: string | null;
  readonly targets: readonly TargetExplanation[];
  readonly pick: {
    readonly target: string | null;
    readonly reason: string;
    readonly sticky: string;
    /** Where the hash key comes from and, for ip and path, its value (a header or cookie may be a credential). */
    readonly hash: { readonly on: string; readonly key?: string } | null;
  };
}

const originOf = (t: Target): string => t.origin.origin;

export function explainUpstream(pool: UpstreamPool, ctx: RequestContext): UpstreamExplanation {
  const state = pool.state;
  const pick = pool.wouldPick(ctx);
  const chances = new Map(pick.chances?.map((c) => [c.target, c.share]));
  const hashOn = pool.hashOn;
  return {
    name: pool.name,
    balance: pool.config.balance,
    breaker: pool.breaker?.state ?? null,
    sticky: pool.sticky?.name ?? null,
    targets: pool.targets.map((t) => ({
      url: originOf(t),
      weight: t.weight,
      backup: t.backup,
      healthy: t.healthy,
      ejected: pool.outliers?.isEjected(t.key) ?? false,
      drained: state.paused.has(t.key),
      inFlight: t.active,
      inRotation: state.usableSet.has(t),
      picked: t === pick.target,
      ...(chances.has(t) ? { chance: chances.get(t)! } : {}),
    })),
    pick: {
      target: pick.target === undefined ? null : originOf(pick.target),
      reason: pick.reason,
      sticky: pick.sticky,
      hash:
        pick.hash === null || hashOn === null
          ? null
          : hashOn.kind === 'ip' || hashOn.kind === 'path'
            ? { on: hashSourceName(hashOn), key: pick.hash.key }
            : { on: hashSourceName(hashOn) },
    },
  };
}
