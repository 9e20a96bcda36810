// Which targets the active health checker probes, and how: derived from the config alone, so the primary of
// a multi-worker instance (which builds no pools) probes exactly the targets its workers use, under the same ids.
import type { Config } from '../config/schema.ts';
import { targetId } from '../upstream/target-id.ts';
import type { CheckedTarget } from './active-checker.ts';

export function checkedTargets(config: Config): CheckedTarget[] {
  const out: CheckedTarget[] = [];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const active = upstream.healthCheck.active;
    if (active === undefined) continue;
    for (const t of upstream.targets) {
      out.push({
        key: targetId(name, t.url, t.weight, t.backup, upstream),
        url: new URL(t.url).origin,
        check: {
          type: active.type,
          path: active.path,
          expectStatus: active.expectStatus,
          interval: active.interval,
          timeout: active.timeout,
          healthyThreshold: active.healthyThreshold,
          unhealthyThreshold: active.unhealthyThreshold,
          ...(active.host !== undefined ? { host: active.host } : {}),
        },
      });
    }
  }
  return out;
}
