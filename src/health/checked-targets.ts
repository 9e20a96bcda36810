// Which targets the active health checker probes, and how: derived from the config alone, so the primary of
// a multi-worker instance (which builds no pools) probes exactly the targets its workers use, under the same ids.
import type { Config } from '../config/schema.ts';
import { kindOf } from '../config/upstream-schema.ts';
import { l4TargetId, targetId } from '../upstream/target-id.ts';
import type { CheckedTarget } from './active-checker.ts';

export function checkedTargets(config: Config): CheckedTarget[] {
  const out: CheckedTarget[] = [];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const active = upstream.healthCheck.active;
    if (active === undefined) continue;
    const kind = kindOf(upstream.targets[0]!.url);
    if (kind === 'udp') continue; // a UDP target cannot be probed without knowing its protocol
    for (const t of upstream.targets) {
      const url = new URL(t.url);
      out.push({
        key: kind === 'tcp' ? l4TargetId(name, url) : targetId(name, t.url, t.weight, t.backup, upstream),
        // A tcp:// target is probed by connecting: the checker reads host and port from an http:// URL.
        url: kind === 'tcp' ? `http://${url.host}` : url.origin,
        check: {
          type: kind === 'tcp' ? 'tcp' : active.type,
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
