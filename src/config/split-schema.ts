// The `split` terminal's config (src/terminals/split.ts): a weighted choice across upstreams, entries that take
// the requests their `match` predicates pick, and `splitSticky`, the signed cookie that keeps a client on a side.
import { z } from 'zod';
import { duration, headerName, stringMatcher } from './primitives.ts';
import { secret } from './secret.ts';

const cookieName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { message: 'expected a cookie name' });

const entryMatch = z
  .strictObject({
    headers: z
      .record(headerName, stringMatcher)
      .optional()
      .meta({
        description: 'request headers that must match: an exact value or { regex }',
        examples: [{ 'x-canary': 'always' }],
      }),
    cookie: z
      .record(cookieName, stringMatcher)
      .optional()
      .meta({ description: 'cookies that must match: an exact value or { regex }', examples: [{ beta: '1' }] }),
    query: z
      .record(z.string(), stringMatcher)
      .optional()
      .meta({
        description: 'query parameters (decoded, first occurrence) that must match',
        examples: [{ canary: '1' }],
      }),
  })
  .meta({
    description: 'requests this side takes whatever the weights (all predicates given must match), as a route match',
    examples: [{ headers: { 'x-canary': 'always' } }],
  });

const entry = z
  .strictObject({
    upstream: z
      .string()
      .min(1)
      .meta({ description: 'the upstream of this side (a name under upstreams)', examples: ['checkout-canary'] }),
    weight: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .meta({
        description:
          "this side's share of the requests no `match` took: weight / sum of weights; 0 takes no new client (sticky ones stay). Default 0 with `match`, required without",
        examples: [5],
      }),
    match: entryMatch.optional(),
  })
  .refine((e) => e.weight !== undefined || e.match !== undefined, {
    message: 'a split entry needs a weight (or a match, which then takes only the requests it matches)',
    path: ['weight'],
  });

export const split = z
  .array(entry)
  .min(1)
  .refine((list) => list.some((e) => (e.weight ?? 0) > 0), {
    message: 'a split needs one entry with a weight above 0',
  })
  .refine((list) => new Set(list.map((e) => e.upstream)).size === list.length, {
    message: 'a split names each upstream once (a side is an upstream)',
  })
  .meta({
    description:
      'send to one of several upstreams by weight (canary, blue/green): entries whose match fits are tried first, in order; then the weights choose (smooth weighted round robin)',
    examples: [
      [
        { upstream: 'checkout-stable', weight: 95 },
        { upstream: 'checkout-canary', weight: 5 },
      ],
    ],
  });

export const splitSticky = z
  .strictObject({
    cookie: cookieName.meta({ description: 'the cookie that names the side a client got', examples: ['tp_checkout'] }),
    secret: secret(z.string().min(16, { message: 'a splitSticky secret needs at least 16 characters' })).meta({
      description: 'HMAC key of the cookie (16 characters or more); the same on every instance, so all agree',
      examples: ['${CHECKOUT_SPLIT_SECRET}'],
    }),
    ttl: duration.optional().meta({ description: 'cookie lifetime (default: a session cookie)', examples: ['7d'] }),
    path: z
      .string()
      .default('/')
      .meta({ description: 'the Path of the cookie', examples: ['/checkout'] }),
    secure: z.boolean().default(false).meta({ description: 'mark the cookie Secure (sent over HTTPS only)' }),
    sameSite: z.enum(['Lax', 'Strict', 'None']).default('Lax').meta({ description: 'the SameSite of the cookie' }),
  })
  .meta({
    description: "keep a client on the split's side it first got, by a signed cookie (needs split)",
    examples: [{ cookie: 'tp_checkout', secret: '${CHECKOUT_SPLIT_SECRET}' }],
  });

export type SplitConfig = z.output<typeof split>;
export type SplitStickyConfig = z.output<typeof splitSticky>;
