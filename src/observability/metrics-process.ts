// What describes the process rather than a runtime: prom-client's default metrics (made once) and the build.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';

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
  // The descriptor limit is each process's own: an instance's workers share it, so the primary must not sum it.
  const maxFds = r.getSingleMetric('process_max_fds') as (Metric & { aggregator: string }) | undefined;
  if (maxFds !== undefined) maxFds.aggregator = 'max';
  dropEmptyLagMinimum(r);
  processMetrics = r;
  return r;
}

/**
 * An event-loop delay window with no sample (two collections within the monitor's 10 ms resolution: a worker's
 * urgent report right after its periodic one) has a minimum of 2^63 ns, which prom-client reports as 9.2e9 s; such
 * a window has no minimum, so the sample is left out (the primary's min over workers then takes the others').
 */
function dropEmptyLagMinimum(r: Registry): void {
  const lagMin = r.getSingleMetric('nodejs_eventloop_lag_min_seconds');
  if (lagMin === undefined) return;
  const get = lagMin.get.bind(lagMin);
  lagMin.get = async () => {
    const metric = await get();
    return { ...metric, values: metric.values.filter((v) => v.value < NO_SAMPLE_SECONDS) };
  };
}

/** Far above any real event-loop delay, far below the empty histogram's 2^63 ns. */
const NO_SAMPLE_SECONDS = 1e9;

/** A short hash of a config's text (sha256): the `hash` of turnpike_config_info, what `turnpike push` prints. */
export function configTextHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** A short hash of the running config: the `version` of turnpike_config_info. */
export function configVersion(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}
