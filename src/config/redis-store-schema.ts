// `stores.redis`: one Redis (url), a Sentinel-watched master (sentinels + name) or a Cluster (cluster), with the
// credentials and TLS they share. Exactly one of url, sentinels and cluster says where Redis is.
import { z } from 'zod';
import { duration, PATTERNS } from './primitives.ts';
import { secret } from './secret.ts';
import { upstreamTls } from './upstream-schema.ts';

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** host:port, [v6]:port: the host and port of one node (undefined when `text` is not one). */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

const hostPort = z
  .string()
  .refine((s) => parseHostPort(s) !== undefined, { message: 'expected host:port, such as 127.0.0.1:26379' })
  .meta({ pattern: '^(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):\\d{1,5}$' });

export const redisStore = z
  .strictObject({
    url: secret(
      z
        .string()
        .refine((u) => /^rediss?:\/\//.test(u) && URL.canParse(u), {
          message: 'expected redis://host:port or rediss://...',
        })
        .meta({
          description: 'redis://host:port (rediss:// for TLS), with a user, password or database number if needed',
          examples: ['redis://127.0.0.1:6379'],
          pattern: PATTERNS.redisUrl,
        }),
      'url',
    ).optional(),
    sentinels: z
      .array(hostPort)
      .min(1)
      .optional()
      .meta({
        description: 'Redis Sentinels (host:port) that know the master named by name; the client follows failovers',
        examples: [['127.0.0.1:26379', '127.0.0.1:26380']],
      }),
    name: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'the master name the sentinels watch (with sentinels)', examples: ['mymaster'] }),
    cluster: z
      .array(hostPort)
      .min(1)
      .optional()
      .meta({
        description: 'Redis Cluster nodes (host:port) to start from; the client learns the others',
        examples: [['10.0.0.1:6379', '10.0.0.2:6379', '10.0.0.3:6379']],
      }),
    username: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'the ACL user Redis knows this gateway as (default: the default user)',
        examples: ['turnpike'],
      }),
    password: secret(z.string().min(1))
      .optional()
      .meta({ description: 'the password of username (AUTH)', examples: ['${REDIS_PASSWORD}'] }),
    sentinelUsername: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'the ACL user for the sentinels, when they ask for one', examples: ['sentinel-user'] }),
    sentinelPassword: secret(z.string().min(1))
      .optional()
      .meta({
        description: 'the password of the sentinels (requirepass of sentinel.conf)',
        examples: ['${SENTINEL_PASSWORD}'],
      }),
    tls: z
      .union([z.boolean(), upstreamTls])
      .optional()
      .meta({
        description:
          'TLS to Redis (and to the sentinels): true, or the CA, a client certificate and the name to verify',
        examples: [true, { ca: 'certs/redis-ca.pem', serverName: 'redis.internal' }],
      }),
    connectTimeout: duration
      .prefault('1s')
      .meta({ description: 'time to connect to Redis; then the call is a store error', examples: ['2s'] }),
    commandTimeout: duration
      .prefault('500ms')
      .meta({ description: 'a store call slower than this counts as a store error', examples: ['200ms'] }),
  })
  .superRefine((r, ctx) => {
    const where = [r.url, r.sentinels, r.cluster].filter((v) => v !== undefined).length;
    if (where !== 1) ctx.addIssue({ code: 'custom', path: [], message: 'expected one of url, sentinels or cluster' });
    if (r.sentinels !== undefined && r.name === undefined)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'sentinels need name (the master name they watch)' });
    if (r.sentinels === undefined) {
      for (const key of ['name', 'sentinelUsername', 'sentinelPassword'] as const)
        if (r[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} goes with sentinels` });
    }
  });

export type RedisStoreConfig = z.output<typeof redisStore>;
