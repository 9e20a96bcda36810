// Shared schema pieces: durations, sizes, CIDRs, string matchers. Plugins build their schemas from these.
import { z } from 'zod';
import { isCidr } from '../http/cidr.ts';
import { DURATION_PATTERN, isBareNumber, parseDuration, parseShare, parseSize, SIZE_PATTERN } from '../units.ts';

const DURATION_FORMS = 'a duration such as 250ms, 5s, 1m, 1h, 1d or 1y';

/** Why `v` is not a duration, or undefined when it is one. A bare number gets the fix rather than a guess. */
function durationProblem(v: string | number): string | undefined {
  if (parseDuration(v) !== undefined) return undefined;
  if (isBareNumber(v)) {
    const n = String(v).trim();
    return `a bare number is not a duration (seconds? milliseconds?): write ${n}s or ${n}ms (only 0 needs no unit)`;
  }
  return `expected ${DURATION_FORMS}, got ${JSON.stringify(v)}`;
}

function durationType(continueAfterIssue: boolean) {
  return z
    .union([z.string(), z.number()], { error: `expected ${DURATION_FORMS}` })
    .transform((v, ctx) => {
      const problem = durationProblem(v);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem, continue: continueAfterIssue });
        return z.NEVER;
      }
      return parseDuration(v)!;
    })
    .meta({
      description: 'A duration: 250ms, 5s, 1m, 1h, 1d, 1y (365 days); a bare number is refused, except 0',
      [JSON_FORM]: DURATION_JSON,
    });
}

/** Meta key of a schema whose JSON Schema form is written by hand (json-schema.ts): zod sees a string or number. */
export const JSON_FORM = 'turnpikeJsonForm';

/** What an editor should accept for a duration: a number with a unit, or 0. */
const DURATION_JSON = {
  anyOf: [{ type: 'string', pattern: `^\\s*${DURATION_PATTERN}\\s*$` }, { const: 0 }, { const: '0' }],
};

/** `250ms`, `5s`, `1m`, `1h`, `1d`, `1y` → milliseconds. The one duration type of every schema. */
export const duration = durationType(false);

/** A duration that must be above 0 (a period, a window, a time to wait before trying again). */
export const positiveDuration = duration.refine((ms) => ms > 0, {
  message: 'expected a duration above 0, such as 10s',
});

/**
 * The same duration, whose issue does not abort: inside a union (`false | { maxAge, ... }`) the problem is then
 * reported at the key rather than as "neither form".
 */
export const durationInUnion = durationType(true);

/** `20%` or `0.2` → 0.2. The one type of every configured fraction. */
export const share = z
  .union([z.number(), z.string()], { error: 'expected a share such as 20% or 0.2' })
  .transform((v, ctx) => {
    const fraction = parseShare(v);
    if (fraction === undefined) {
      const n = typeof v === 'number' ? v : Number(v.trim());
      const hint = Number.isFinite(n) && n > 1 && n <= 100 ? `: write ${n}% or ${n / 100}` : '';
      ctx.addIssue({
        code: 'custom',
        message: `expected a share such as 20% or 0.2 (0% to 100%, or 0 to 1), got ${JSON.stringify(v)}${hint}`,
      });
      return z.NEVER;
    }
    return fraction;
  })
  .meta({ description: 'A share: 20% or 0.2 (0% to 100%, or a fraction from 0 to 1)' });

/** `16kb`, `10mb`, `2gb` (or bytes as a number) → bytes. */
export const size = z
  .union([z.string(), z.number()], { error: 'expected a size such as 512b, 16kb, 10mb or 2gb' })
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size such as 512b, 16kb, 10mb or 2gb, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({
    description: 'A size: 512b, 16kb, 10mb, 2gb (binary multiples; a bare number is bytes)',
    [JSON_FORM]: {
      anyOf: [
        { type: 'string', pattern: `^\\s*${SIZE_PATTERN}\\s*$` },
        { type: 'integer', minimum: 0 },
      ],
    },
  });

/**
 * Patterns `turnpike schema` gives editors for what the loader checks with code (the loader stays the judge: a
 * pattern flags the obvious mistakes, it never accepts what the loader refuses in the common forms).
 */
export const PATTERNS = {
  /** IPv4 or IPv6, with an optional prefix length (isCidr). */
  cidr: '^(?:\\d{1,3}(?:\\.\\d{1,3}){3}(?:/\\d{1,2})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z._~-]+)?(?:/\\d{1,3})?)$',
  /** An http:// or https:// URL (identity providers, collectors). */
  httpUrl: '^https?://[^\\s/?#]+(?:[/?#]\\S*)?$',
  /** A target: an origin without a path (targetUrlProblem). */
  targetUrl: '^(?:https?|tcp|udp)://[^\\s/?#]+/?$',
  redisUrl: '^rediss?://[^\\s/?#]*(?:[/?#]\\S*)?$',
} as const;

export const cidr = z
  .string()
  .refine(isCidr, { message: 'expected an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32' })
  .meta({ pattern: PATTERNS.cidr });

function validRegex(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

export const regexSource = z.string().refine(validRegex, { message: 'expected a valid regular expression' });

/** An exact string, or `{ regex: ... }`. */
export const stringMatcher = z
  .union(
    [
      z.string(),
      z.number().transform(String),
      z.strictObject({
        regex: regexSource.meta({ description: 'a regular expression the value must match', examples: ['^2'] }),
      }),
    ],
    { error: 'expected a string to match exactly, or { regex: "..." }' },
  )
  .meta({ examples: ['2'] });

export const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { message: 'expected an HTTP header name' })
  .transform((s) => s.toLowerCase());

export const httpMethod = z
  .string()
  .regex(/^[A-Za-z]+$/, { message: 'expected an HTTP method such as GET' })
  .transform((s) => s.toUpperCase());

/** Why a literal route path is not usable (the router compiles these), or undefined when it is. */
export function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'a path must start with /';
  for (const segment of path.slice(1).split('/')) {
    if (segment.startsWith(':') && !/^:[A-Za-z0-9_]+$/.test(segment)) {
      return `"${segment}" is not a parameter; a parameter is a whole segment such as :id (letters, digits, _)`;
    }
    if (/[*?#]/.test(segment)) return 'a path segment cannot contain *, ? or # (use { regex: ... } for patterns)';
  }
  return undefined;
}

export const routePath = z.string().superRefine((path, ctx) => {
  const problem = routePathProblem(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});
