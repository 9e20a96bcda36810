// Durations, sizes and shares are parsed once, when the config loads; the runtime only sees numbers.

/** A number with its unit (the form editors are told about by `turnpike schema`). */
export const DURATION_PATTERN = '(\\d+(?:\\.\\d+)?)(ms|s|m|h|d|y)';
const DURATION = new RegExp(`^${DURATION_PATTERN}$`);
const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  y: 365 * 86_400_000,
};

/**
 * Parses `250ms`, `5s`, `1.5m`, `1h`, `1d`, `1y` (365 days) into milliseconds. A bare `0` is 0; any other bare
 * number is not a duration (undefined): NGINX users read seconds, this code would read milliseconds.
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return input === 0 ? 0 : undefined;
  const text = input.trim();
  if (text === '0') return 0;
  const m = DURATION.exec(text);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/** `30` or `"30"`: a number without a unit where a duration is expected. */
export function isBareNumber(input: string | number): boolean {
  return typeof input === 'number' ? Number.isFinite(input) : /^\d+(\.\d+)?$/.test(input.trim());
}

/** A number with an optional unit, any letter case (also the pattern `turnpike schema` gives editors). */
export const SIZE_PATTERN = '(\\d+(?:\\.\\d+)?)\\s*([kKmMgG][iI]?[bB]|[tT][bB]|[kKmMgGbB])?';
const SIZE = new RegExp(`^${SIZE_PATTERN}$`);
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1024 ** 4,
};

/** Parses `16kb`, `10mb`, `2gb` (binary multiples, as NGINX does) or a plain number of bytes. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isInteger(input) && input >= 0 ? input : undefined;
  const m = SIZE.exec(input.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!);
}

/** Parses a share: `20%` (0 to 100%) or a fraction from 0 to 1 (`0.2`, also quoted) → 0..1. */
export function parseShare(input: string | number): number | undefined {
  if (typeof input === 'number') return input >= 0 && input <= 1 ? input : undefined;
  const text = input.trim();
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const n = Number(percent[1]);
    return n <= 100 ? n / 100 : undefined;
  }
  return /^\d+(\.\d+)?$/.test(text) ? parseShare(Number(text)) : undefined;
}
