// security-headers: adds the usual browser hardening headers to every response of a route (a response phase
// plugin: its hook sees local answers too — 401, 403, 429, 404).
import { z } from 'zod';
import { durationInUnion } from '../config/primitives.ts';
import { continues } from './explain-support.ts';
import { definePlugin } from './types.ts';

const REFERRER_POLICIES = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'origin',
  'origin-when-cross-origin',
  'same-origin',
  'strict-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
] as const;

const YEAR_MS = 365 * 86_400_000;

/**
 * HSTS max-age: the one config duration (`180d`, `1y` = 365 days). Its issue does not abort, so the
 * `false | {...}` union below reports it at hsts.maxAge rather than "neither form".
 */
const hstsAge = durationInUnion;

const hsts = z
  .strictObject({
    maxAge: hstsAge.prefault('1y').meta({ description: 'the max-age (sent in whole seconds)', examples: ['180d'] }),
    includeSubDomains: z
      .boolean()
      .default(false)
      .meta({ description: 'add includeSubDomains: every subdomain is HTTPS-only too' }),
    preload: z
      .boolean()
      .default(false)
      .meta({ description: 'add preload (needs includeSubDomains and a maxAge of 1y or more)' }),
  })
  .refine((h) => !h.preload || (h.includeSubDomains && h.maxAge >= YEAR_MS), {
    message:
      'hsts preload needs includeSubDomains: true and a maxAge of at least 1y (the preload list refuses anything less)',
    path: ['preload'],
  });

/** For a map, what is wrong inside it (a union would only say "neither form"); else which forms are taken. */
function hstsError(issue: {
  input?: unknown;
  errors?: readonly (readonly { path: PropertyKey[]; message: string }[])[];
}): string {
  const inner = issue.input !== null && typeof issue.input === 'object' ? issue.errors?.[1]?.[0] : undefined;
  if (inner === undefined) return 'expected false or { maxAge, includeSubDomains, preload }';
  return `${inner.path.length > 0 ? `${inner.path.join('.')}: ` : ''}${inner.message}`;
}

/** A header value from config: printable ASCII only (anything else would make writing the response head throw). */
const headerValue = z
  .string()
  .min(1)
  .regex(/^[\x20-\x7e]+$/, { message: 'expected a header value of printable ASCII characters' });

const schema = z.strictObject({
  contentTypeOptions: z
    .boolean()
    .default(true)
    .meta({ description: 'X-Content-Type-Options: nosniff (false to omit)' }),
  frameOptions: z
    .union([z.literal(false), z.enum(['DENY', 'SAMEORIGIN'])], { error: 'expected DENY, SAMEORIGIN or false' })
    .default('DENY')
    .meta({ description: 'X-Frame-Options: DENY, SAMEORIGIN, or false to omit', examples: ['SAMEORIGIN'] }),
  referrerPolicy: z
    .union([z.literal(false), z.enum(REFERRER_POLICIES)], {
      error: `expected false or one of: ${REFERRER_POLICIES.join(', ')}`,
    })
    .default('no-referrer')
    .meta({ description: 'Referrer-Policy, or false to omit', examples: ['strict-origin-when-cross-origin'] }),
  hsts: z
    .union([z.literal(false), hsts], { error: hstsError })
    .prefault({})
    .meta({ description: 'Strict-Transport-Security, sent only on https requests' }),
  contentSecurityPolicy: headerValue
    .optional()
    .meta({ description: 'Content-Security-Policy, when given', examples: ["default-src 'self'"] }),
  permissionsPolicy: headerValue
    .optional()
    .meta({ description: 'Permissions-Policy, when given', examples: ['geolocation=(), camera=()'] }),
  override: z.boolean().default(false).meta({
    description: 'Replace these headers when the upstream already set them (default: keep the upstream value)',
  }),
});

export const securityHeadersPlugin = definePlugin({
  name: 'security-headers',
  phase: 'transform-response',
  description:
    'Adds X-Content-Type-Options, X-Frame-Options, Referrer-Policy, HSTS (https only) and optional CSP / Permissions-Policy to responses',
  schema,
  create(config) {
    const names: string[] = [];
    const values: string[] = [];
    const add = (name: string, value: string | false | undefined) => {
      if (value === false || value === undefined) return;
      names.push(name);
      values.push(value);
    };
    add('x-content-type-options', config.contentTypeOptions && 'nosniff');
    add('x-frame-options', config.frameOptions);
    add('referrer-policy', config.referrerPolicy);
    add('content-security-policy', config.contentSecurityPolicy);
    add('permissions-policy', config.permissionsPolicy);
    const h = config.hsts;
    const hstsValue =
      h === false
        ? null
        : `max-age=${Math.floor(h.maxAge / 1000)}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
    const override = config.override;
    const count = names.length;
    return {
      explain: (ctx) =>
        continues(
          `adds ${[...names, ...(hstsValue !== null && ctx.scheme === 'https' ? ['strict-transport-security'] : [])].join(', ')} to the response`,
        ),
      response(ctx, head) {
        const headers = head.headers;
        for (let i = 0; i < count; i++) {
          const name = names[i]!;
          if (override || headers[name] === undefined) headers[name] = values[i]!;
        }
        // HSTS over plain http is ignored by browsers and would only mislead (RFC 6797 §7.2).
        if (
          hstsValue !== null &&
          ctx.scheme === 'https' &&
          (override || headers['strict-transport-security'] === undefined)
        ) {
          headers['strict-transport-security'] = hstsValue;
        }
      },
    };
  },
});
