import type { RequestContext } from '../../request-context.ts';
import type { Target } from '../target.ts';

/** Picks one target for a request. Balancers are small and pure so each is tested for its distribution. */
export interface Balancer {
  pick(ctx: RequestContext, targets: readonly Target[]): Target | undefined;
}
