// The pool's pick, said rather than made (`turnpike explain`): the sticky cookie first, then the balancer's `peek`
// on the request's hash key. Nothing moves: no rotation, no in-flight count, no cookie set, no random draw.
import { cookieValue } from '../http/cookies.ts';
import type { RequestContext } from '../request-context.ts';
import { hashKey, hashSourceName } from './hash-key.ts';
import type { UpstreamPool } from './pool.ts';
import type { Target } from './target.ts';

/** off: no sticky cookie configured; absent, invalid (bad signature or expired), stale (names no usable target), pinned. */
export type StickyVerdict = 'off' | 'absent' | 'invalid' | 'stale' | 'pinned';

export interface PickExplanation {
  /** Undefined when no target is usable, or when the balancer draws at random (`chances`). */
  readonly target: Target | undefined;
  readonly reason: string;
  readonly chances?: readonly { readonly target: Target; readonly share: number }[];
  readonly sticky: StickyVerdict;
  /** The request's hash key and where it came from (consistent-hash, ip-hash); null for other balancers. */
  readonly hash: { readonly on: string; readonly key: string } | null;
}

export function wouldPick(pool: UpstreamPool, ctx: RequestContext): PickExplanation {
  const state = pool.state;
  let sticky: StickyVerdict = 'off';
  if (pool.sticky !== null) {
    const header = ctx.req.headers.cookie;
    const token = pool.sticky.read(header);
    const pinned = token === undefined ? undefined : state.byToken.get(token);
    if (pinned !== undefined && state.usableSet.has(pinned))
      return { target: pinned, reason: `the sticky cookie ${pool.sticky.name} pins it`, sticky: 'pinned', hash: null };
    sticky =
      token !== undefined
        ? 'stale'
        : header !== undefined && cookieValue(header, pool.sticky.name) !== undefined
          ? 'invalid'
          : 'absent';
  }
  const hash = pool.hashOn === null ? null : { on: hashSourceName(pool.hashOn), key: hashKey(ctx, pool.hashOn) };
  const peek = state.balancer.peek(hash?.key ?? '');
  let reason = peek.reason;
  const t = peek.target;
  if (t !== undefined && t.healthySince !== 0 && pool.slowStart > 0 && state.usable.length > 1) {
    const ramp = (state.clock.monotonic() - t.healthySince) / pool.slowStart;
    if (ramp < 1) reason += `; in slow start (${Math.round(ramp * 100)} %), so another target may take it`;
  }
  if (pool.sticky !== null) reason += `; a new ${pool.sticky.name} cookie would pin the client to it`;
  return { target: t, reason, ...(peek.chances ? { chances: peek.chances } : {}), sticky, hash };
}
