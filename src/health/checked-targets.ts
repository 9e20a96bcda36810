// Which targets the active health checker probes, and how. The primary of a multi-worker instance (which builds
// no pools) derives them from the config alone, under the ids its workers use; a single process passes its live
// HTTP targets, so targets added or drained at run time are probed or dropped too.
import type { Config, UpstreamConfig } from '../config/schema.ts';
import { upstreamKind } from '../config/upstream-schema.ts';
import { l4TargetId, targetKey } from '../upstream/target-id.ts';
import type { CheckedTarget } from './active-checker.ts';

type ActiveCheck = UpstreamConfig['healthCheck']['active'];

/** A live HTTP target: its health id, origin and its upstream's active check (if any). */
export interface LiveTarget {
  readonly id: string;
  readonly url: string;
  readonly check: ActiveCheck;
}

/**
 * The config's targets; with `live`, HTTP targets come from there instead of the config. `discovered` adds the
 * targets the primary's discovery found, by upstream (a single process has them in `live`).
 */
export function checkedTargets(
  config: Config,
  live?: Iterable<LiveTarget>,
  discovered?: ReadonlyMap<string, readonly string[]>,
): CheckedTarget[] {
  const out: CheckedTarget[] = [];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const active = upstream.healthCheck.active;
    if (active === undefined) continue;
    const kind = upstreamKind(upstream);
    if (kind === 'udp') continue; // a UDP target cannot be probed without knowing its protocol
    if (kind === 'http' && live !== undefined) continue;
    for (const t of upstream.targets) {
      const url = new URL(t.url);
      // A tcp:// target is probed by connecting: the checker reads host and port from an http:// URL.
      if (kind === 'tcp')
        out.push({
          key: l4TargetId(name, url),
          url: `http://${url.host}`,
          check: { ...settings(active), type: 'tcp' },
        });
      else out.push({ key: targetKey(name, t.url), url: url.origin, check: settings(active) });
    }
    if (live === undefined)
      for (const url of discovered?.get(name) ?? [])
        out.push({ key: targetKey(name, url), url: new URL(url).origin, check: settings(active) });
  }
  if (live !== undefined)
    for (const t of live) if (t.check !== undefined) out.push({ key: t.id, url: t.url, check: settings(t.check) });
  return out;
}

function settings(active: NonNullable<ActiveCheck>): CheckedTarget['check'] {
  return {
    type: active.type,
    path: active.path,
    expectStatus: active.expectStatus,
    interval: active.interval,
    timeout: active.timeout,
    healthyThreshold: active.healthyThreshold,
    unhealthyThreshold: active.unhealthyThreshold,
    ...(active.host !== undefined ? { host: active.host } : {}),
  };
}
