// The top-level `consumers:` (who may call), `stores:` (shared state) and `consumerHeaders:` sections.
import { z } from 'zod';
import { duration, headerName } from './primitives.ts';
import { secret } from './secret.ts';

/** scrypt hashes as `turnpike hash-password` prints them, or bcrypt ($2a$, $2b$, $2y$). */
export const PASSWORD_HASH =
  /^(scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+|\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53})$/;

const consumer = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]+$/, { message: 'expected a consumer name of letters, digits, _ . @ -' }),
  groups: z.array(z.string().min(1)).default([]),
  credentials: z
    .strictObject({
      apiKeys: z
        .array(
          secret(
            z.string().min(16, { message: 'an API key needs at least 16 characters (or sha256:<64 hex digits>)' }),
          ),
        )
        .default([])
        .superRefine((keys, ctx) => {
          keys.forEach((k, i) => {
            if (k.startsWith('sha256:') && !/^sha256:[0-9a-fA-F]{64}$/.test(k)) {
              ctx.addIssue({ code: 'custom', path: [i], message: 'expected sha256: followed by 64 hex digits' });
            }
          });
        }),
      basic: z
        .strictObject({
          username: z
            .string()
            .min(1)
            .regex(/^[^:]+$/, { message: 'a Basic username cannot contain ":"' }),
          passwordHash: secret(
            z.string().regex(PASSWORD_HASH, {
              message: 'expected a hash printed by `turnpike hash-password` (scrypt$...) or a bcrypt hash ($2b$...)',
            }),
          ),
        })
        .optional(),
      jwt: z.strictObject({ subject: z.string().min(1) }).optional(),
    })
    .prefault({}),
});

export const consumers = z.array(consumer).default([]);

export const stores = z
  .strictObject({
    redis: z
      .strictObject({
        url: secret(
          z.string().refine((u) => /^rediss?:\/\//.test(u) && URL.canParse(u), {
            message: 'expected redis://host:port or rediss://...',
          }),
          'url',
        ),
        connectTimeout: duration.prefault('1s'),
        commandTimeout: duration
          .prefault('500ms')
          .meta({ description: 'a store call slower than this counts as a store error' }),
      })
      .optional(),
  })
  .prefault({});

export const consumerHeaders = z
  .strictObject({
    name: headerName.default('x-consumer-name'),
    groups: headerName.default('x-consumer-groups'),
  })
  .prefault({})
  .meta({
    description:
      'headers that carry the identified consumer upstream; the same headers sent by clients are always removed',
  });
