// The top-level `consumers:` (who may call), `stores:` (shared state) and `consumerHeaders:` sections.
import { z } from 'zod';
import { headerName } from './primitives.ts';
import { redisStore } from './redis-store-schema.ts';
import { secret } from './secret.ts';

/** scrypt hashes as `turnpike hash-password` prints them, or bcrypt ($2a$, $2b$, $2y$). */
export const PASSWORD_HASH =
  /^(scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+|\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53})$/;

const consumer = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]+$/, { message: 'expected a consumer name of letters, digits, _ . @ -' })
    .meta({
      description: 'the consumer name: sent upstream (X-Consumer-Name), logged, named by allow and rate limits',
      examples: ['mobile'],
    }),
  groups: z
    .array(z.string().min(1))
    .default([])
    .meta({ description: 'groups the consumer is in (for allow: { groups })', examples: [['partners']] }),
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
        })
        .meta({
          description: 'API keys (16 characters or more) or their sha256:<hex> digests, read by key-auth',
          examples: [['${MOBILE_API_KEY}']],
        }),
      basic: z
        .strictObject({
          username: z
            .string()
            .min(1)
            .regex(/^[^:]+$/, { message: 'a Basic username cannot contain ":"' })
            .meta({ description: 'the Basic username', examples: ['app'] }),
          passwordHash: secret(
            z.string().regex(PASSWORD_HASH, {
              message: 'expected a hash printed by `turnpike hash-password` (scrypt$...) or a bcrypt hash ($2b$...)',
            }),
          ).meta({
            description: 'the password hash: `turnpike hash-password` prints one (scrypt), or bcrypt',
            examples: ['scrypt$16384$8$1$OCO-coxLNF_H6WtA1R20GQ$6VhJl_nkv8D-R5UwH0u3PFbV-Cey7tCEBIZJpwLzcyg'],
          }),
        })
        .optional()
        .meta({ description: 'a Basic username and password hash, read by basic-auth' }),
      jwt: z
        .strictObject({
          subject: z
            .string()
            .min(1)
            .meta({ description: 'the sub claim of the tokens that are this consumer', examples: ['user-123'] }),
        })
        .optional()
        .meta({ description: 'the token subject that is this consumer, read by jwt and oauth2-introspection' }),
    })
    .prefault({})
    .meta({ description: 'how the authentication plugins recognise this consumer' }),
});

export const consumers = z
  .array(consumer)
  .default([])
  .meta({ description: 'who may call: names, groups and credentials, for the authentication plugins' });

export const stores = z
  .strictObject({
    redis: redisStore.optional().meta({
      description:
        'the Redis shared by every instance (store: redis of rate-limit and cache): url, sentinels or cluster',
    }),
  })
  .prefault({})
  .meta({ description: 'stores of state shared beyond one process' });

export const consumerHeaders = z
  .strictObject({
    name: headerName
      .default('x-consumer-name')
      .meta({ description: 'the header that carries the consumer name', examples: ['x-user'] }),
    groups: headerName.default('x-consumer-groups').meta({
      description: "the header that carries the consumer's groups (comma-separated)",
      examples: ['x-user-groups'],
    }),
  })
  .prefault({})
  .meta({
    description:
      'headers that carry the identified consumer upstream; the same headers sent by clients are always removed',
  });
