// The running gateway as admin endpoints need it: a call that needs per-request state (upstreams, caches, the
// snapshot) is refused with 501 when this process does not run the proxy (the primary of a multi-worker instance).
import { TurnpikeError } from '../errors.ts';
import type { Runtime } from '../runtime/runtime.ts';
import type { AdminContext } from './endpoint.ts';

export function runningGateway(admin: AdminContext): Runtime {
  const runtime = admin.runtime();
  if (runtime === null)
    throw new TurnpikeError(
      'TP_ADMIN_UNSUPPORTED',
      'this process does not run the proxy (a multi-worker primary, or still starting)',
    );
  return runtime;
}
