// The `admin:` section: the admin listener (health probes, the admin API, /metrics, the dashboard). It is never
// one of the public listeners; without tokens it must stay on loopback.
import { isIP } from 'node:net';
import { z } from 'zod';
import { secret } from './secret.ts';

export const admin = z
  .strictObject({
    address: z
      .string()
      .refine((a) => isIP(a) !== 0 || a === 'localhost', { message: 'expected an IP address such as 127.0.0.1' })
      .default('127.0.0.1')
      .meta({ description: 'the admin listener address; never a public listener', examples: ['10.0.0.5'] }),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(9901)
      .meta({ description: 'the admin listener port', examples: [9902] }),
    auth: z
      .strictObject({
        tokens: z
          .array(secret(z.string().min(16, { message: 'an admin token needs at least 16 characters' })))
          .min(1)
          .meta({
            description: 'Bearer tokens for /api/* and the dashboard (any one of them), 16 characters or more',
            examples: [['${TURNPIKE_ADMIN_TOKEN}']],
          }),
      })
      .optional()
      .meta({
        description:
          'without it the admin listener must be bound to loopback and serves /api/* without a token; /healthz, /readyz and /metrics never need one',
      }),
  })
  .optional()
  .meta({
    description: 'the admin listener: /healthz, /readyz, /metrics and the admin API (/api/*); off when absent',
    examples: [{ address: '127.0.0.1', port: 9901 }],
  });

export type AdminConfig = NonNullable<z.output<typeof admin>>;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Loopback addresses (the only ones allowed without `auth.tokens`). */
export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/** What the schema alone cannot say: loopback without tokens, and no listener on the admin port. */
export function adminProblems(raw: unknown): { path: (string | number)[]; message: string; duplicate: boolean }[] {
  if (!isObject(raw) || !isObject(raw.admin)) return [];
  const a = raw.admin;
  const out: { path: (string | number)[]; message: string; duplicate: boolean }[] = [];
  const address = typeof a.address === 'string' ? a.address : '127.0.0.1';
  if (!isObject(a.auth) && !isLoopback(address))
    out.push({
      path: ['admin', 'address'],
      message: `the admin listener on ${address} needs admin.auth.tokens; without tokens it must be bound to loopback (127.0.0.1 or ::1)`,
      duplicate: false,
    });
  const port = typeof a.port === 'number' ? a.port : 9901;
  if (port === 0) return out;
  const listeners = Array.isArray(raw.listeners) ? raw.listeners : [];
  listeners.forEach((l, i) => {
    if (!isObject(l) || l.port !== port || l.protocol === 'udp') return;
    const name = typeof l.name === 'string' ? l.name : String(i);
    out.push({
      path: ['admin', 'port'],
      message: `admin.port ${port} is also the port of listener "${name}" (listeners[${i}]); the admin listener needs its own port`,
      duplicate: true,
    });
  });
  return out;
}
