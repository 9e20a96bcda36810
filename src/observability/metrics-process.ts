// What describes the process rather than a runtime: prom-client's default metrics (made once) and the build.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Registry } from 'prom-client';

export const BUILD_VERSION = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

let processMetrics: Registry | undefined;

/**
 * prom-client's default process and Node.js metrics, once per process: they describe the process, not a
 * runtime, and their event-loop monitor and GC observer are never released, so each runtime must not make its own.
 */
export function processRegistry(): Registry {
  if (processMetrics !== undefined) return processMetrics;
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  // Gauges named like counters, which promtool refuses; each is the sum of its by-type sibling
  // (nodejs_active_handles{type}, ...), so nothing is lost.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    r.removeSingleMetric(name);
  processMetrics = r;
  return r;
}

/** A short hash of the running config: the `version` of turnpike_config_info. */
export function configVersion(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}
