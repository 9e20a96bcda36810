// The exposition: Prometheus text 0.0.4 by default, OpenMetrics 1.0 when the scraper's Accept asks for it.
// Written here from the registry's JSON rather than by prom-client's Registry.metrics(), because that one
// renames every counter in place when it renders OpenMetrics (`foo_total` becomes `foo` for good, so the next
// Prometheus-text scrape loses the suffix) and takes the format from a field shared by concurrent scrapes.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_TEXT = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** OpenMetrics when Accept names it (Prometheus sends it first, with the text format as a fallback). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';');
    if (type!.trim().toLowerCase() !== 'application/openmetrics-text') continue;
    // `q=0` means "not this one".
    if (params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/i.test(p))) continue;
    return true;
  }
  return false;
}

type Family = MetricObjectWithValues<MetricValue<string>>;

export function formatMetrics(families: readonly Family[], openMetrics: boolean): string {
  let out = '';
  for (const f of families) {
    const counter = (f.type as unknown) === 'counter';
    // OpenMetrics names a counter family without `_total` and its sample with it.
    const family = openMetrics && counter ? f.name.replace(/_total$/, '') : f.name;
    out += `# HELP ${family} ${openMetrics ? escapeLabel(f.help) : escapeHelp(f.help)}\n# TYPE ${family} ${f.type}\n`;
    for (const v of f.values) {
      let name = (v as { metricName?: string }).metricName ?? f.name;
      if (openMetrics && counter && !name.endsWith('_total')) name += '_total';
      out += `${name}${formatLabels(v.labels as Record<string, unknown>)} ${formatValue(v.value)}\n`;
    }
  }
  return openMetrics ? `${out}# EOF\n` : out;
}

function formatLabels(labels: Record<string, unknown>): string {
  let out = '';
  for (const key in labels) {
    const value = labels[key];
    if (value === undefined) continue;
    out += `${out === '' ? '' : ','}${key}="${escapeLabel(typeof value === 'number' ? formatValue(value) : String(value))}"`;
  }
  return out === '' ? '' : `{${out}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

// Prometheus text escapes \\ and newlines in HELP; OpenMetrics escapes double quotes there too.
const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
