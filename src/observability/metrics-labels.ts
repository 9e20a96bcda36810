// Label values of the metrics, all bounded: a fixed method list, status classes, outcomes, and the names the
// config gives routes, upstreams and targets (never a raw path).
/** The label of requests no route matched. */
export const NO_ROUTE = '(no route)';

export const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'OTHER',
] as const;
export const METHOD_INDEX = new Map<string, number>(METHODS.map((m, i) => [m, i]));
export const OTHER_METHOD = METHODS.length - 1;
/** Index 0: no status (the client left before an answer). */
export const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const statusClass = (s: number): number => (s >= 100 && s < 600 ? (s / 100) | 0 : 0);

export const BREAKER_VALUE: Readonly<Record<string, number>> = { closed: 0, open: 1, 'half-open': 2 };
/** A try's outcome: how it failed, or the class of the status it got. */
export function outcomeOf(failure: string | null, status: number): string {
  switch (failure) {
    case 'connect-failure':
      return 'connect_error';
    case 'timeout':
      return 'timeout';
    case 'reset':
      return 'reset';
    case 'client-gone':
    case 'abandoned':
      if (status === 0) return 'cancelled';
  }
  const cls = statusClass(status);
  return cls === 0 ? 'reset' : STATUS_CLASSES[cls]!;
}

export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** A health id (`upstream|origin`, or `l4|upstream|host` for tcp targets) as labels. */
export function targetLabels(id: string): { upstream: string; target: string } | null {
  const parts = id.split('|');
  if (parts[0] === 'l4' && parts.length === 3) return { upstream: parts[1]!, target: `tcp://${parts[2]}` };
  if (parts.length === 2) return { upstream: parts[0]!, target: parts[1]! };
  return null;
}

export const NO_VERSION = '(none)';
export const OTHER_VERSION = '(other)';

/** The versions a config's routes name and its default, or null without `versioning:`. */
export function versionLabels(config: unknown): ReadonlySet<string> | null {
  const c = config as {
    versioning?: { default?: string };
    routes?: readonly { match?: { version?: string } }[];
  } | null;
  if (c?.versioning === undefined) return null;
  const set = new Set<string>();
  if (c.versioning.default !== undefined) set.add(c.versioning.default);
  for (const r of c.routes ?? []) if (r.match?.version !== undefined) set.add(r.match.version);
  return set;
}
