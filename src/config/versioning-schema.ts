// API versions: the top-level `versioning:` section (where a request's version comes from), a route's
// `match.version` and its `deprecated:` (RFC 9745 Deprecation, RFC 8594 Sunset, a Link to the migration guide).
import { z } from 'zod';
import { headerName } from './primitives.ts';
import type { CheckProblem } from './problems.ts';

/** A version as routes and clients write it: `1`, `2.1`, `2026-01`. */
const VERSION = /^[A-Za-z0-9._-]{1,64}$/;
export const versionToken = z
  .string()
  .regex(VERSION, { message: 'expected a version of letters, digits, . _ - (such as "2" or "2026-01")' });

export const VERSION_SOURCES = ['header', 'mediaType', 'path'] as const;
export type VersionSource = (typeof VERSION_SOURCES)[number];

export const versioning = z
  .strictObject({
    from: z
      .array(z.enum(VERSION_SOURCES))
      .min(1)
      .refine((f) => new Set(f).size === f.length, { message: 'a source is listed twice' })
      .default(['header'])
      .meta({
        description:
          "where a request's version comes from, in order: header, mediaType (Accept), path (a /v{version}/ prefix, stripped before forwarding)",
        examples: [['header', 'mediaType', 'path']],
      }),
    header: headerName
      .default('api-version')
      .transform((h) => h.toLowerCase())
      .meta({ description: 'the request header carrying the version', examples: ['api-version'] }),
    mediaType: z
      .string()
      .refine((t) => t.split('{version}').length === 2 && !t.includes(',') && !t.includes(';'), {
        message: 'expected a media type with {version} once, such as application/vnd.acme.v{version}+json',
      })
      .optional()
      .meta({
        description: 'the media type in Accept that carries the version, {version} marking it',
        examples: ['application/vnd.acme.v{version}+json'],
      }),
    default: versionToken.optional().meta({
      description: 'the version of a request that names none; absent: such a request reaches only unversioned routes',
      examples: ['1'],
    }),
  })
  .superRefine((v, ctx) => {
    if (v.from.includes('mediaType') && v.mediaType === undefined)
      ctx.addIssue({ code: 'custom', message: 'from lists mediaType: give mediaType too', path: ['mediaType'] });
  })
  .meta({
    description:
      "how a request's version is read; routes with match.version take only that version, routes without take any",
    examples: [{ from: ['header', 'path'], header: 'api-version', default: '1' }],
  });

export type VersioningConfig = z.output<typeof versioning>;

const instant = z.iso
  .datetime({ offset: true, message: 'expected an RFC 3339 time such as 2027-06-30T00:00:00Z' })
  .transform((t) => Date.parse(t));

export const deprecated = z
  .strictObject({
    since: instant.meta({
      description: 'when the route was deprecated (the Deprecation header, RFC 9745)',
      examples: ['2026-12-01T00:00:00Z'],
    }),
    sunset: instant.optional().meta({
      description: 'when it stops answering (the Sunset header, RFC 8594); from then on: 410 Gone',
      examples: ['2027-06-30T00:00:00Z'],
    }),
    link: z
      .url()
      .optional()
      .meta({
        description: 'a page about the deprecation (Link rel="deprecation")',
        examples: ['https://docs.example.com/migrate-v2'],
      }),
  })
  .superRefine((d, ctx) => {
    if (d.sunset !== undefined && d.sunset < d.since)
      ctx.addIssue({ code: 'custom', message: 'sunset comes before since', path: ['sunset'] });
  })
  .meta({
    description: 'this route is deprecated: Deprecation, Sunset and Link headers on its answers, 410 after sunset',
    examples: [{ since: '2026-12-01T00:00:00Z', sunset: '2027-06-30T00:00:00Z', link: 'https://docs.example.com/v2' }],
  });

export type DeprecatedConfig = z.output<typeof deprecated>;

/** A route's `match.version` needs the top-level `versioning:` that says where versions come from. */
export function versioningProblems(raw: Record<string, unknown>): CheckProblem[] {
  if (raw.versioning !== undefined || !Array.isArray(raw.routes)) return [];
  const out: CheckProblem[] = [];
  raw.routes.forEach((r: unknown, i) => {
    const match = (r as { match?: { version?: unknown } } | null)?.match;
    if (match !== null && typeof match === 'object' && match.version !== undefined)
      out.push({
        path: ['routes', i, 'match', 'version'],
        message: 'match.version needs a top-level versioning: section (where the version comes from)',
        code: 'TP_CONFIG_BAD_REFERENCE',
      });
  });
  return out;
}
