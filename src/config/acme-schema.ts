// `acme:` on an https listener: certificates obtained and renewed from an ACME CA (RFC 8555), see src/acme/.
import { z } from 'zod';
import { duration } from './primitives.ts';
import { secret } from './secret.ts';

const domain = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, { message: 'expected a DNS name such as api.example.com' })
  .transform((s) => s.toLowerCase())
  .meta({
    description: 'a DNS name the certificate covers (*.example.com only with dns-01)',
    examples: ['api.example.com'],
  });

export const acmeSettings = z
  .strictObject({
    directory: z
      .string()
      .regex(/^https?:\/\/[^\s/]+/, { message: 'expected an http(s) URL' })
      .meta({
        description: "the CA's ACME directory URL",
        examples: ['https://acme-v02.api.letsencrypt.org/directory'],
      }),
    ca: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          "PEM file of the CA that signs the directory's TLS certificate, when it is not publicly trusted (relative to the config file's folder)",
        examples: ['/etc/turnpike/acme-ca.pem'],
      }),
    email: z
      .string()
      .regex(/^[^@\s]+@[^@\s]+$/, { message: 'expected an email address' })
      .optional()
      .meta({ description: 'the account contact the CA writes to', examples: ['ops@example.com'] }),
    domains: z
      .array(domain)
      .min(1)
      .meta({
        description: 'the names of one certificate, ordered and renewed together (the first is its common name)',
        examples: [['api.example.com', 'www.example.com']],
      }),
    challenge: z
      .enum(['http-01', 'tls-alpn-01', 'dns-01'])
      .default('http-01')
      .meta({
        description:
          'how the CA checks the names: http-01 (answered on every http listener, port 80 for a public CA), tls-alpn-01 (on this listener, port 443) or dns-01 (TXT records set by `hook`)',
        examples: ['tls-alpn-01'],
      }),
    hook: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          'dns-01: a program run as `hook set|unset DOMAIN TXTVALUE` that sets or removes _acme-challenge.DOMAIN',
        examples: ['/usr/local/bin/dns-hook'],
      }),
    storage: z
      .string()
      .min(1)
      .meta({
        description:
          "where the account key, certificates, challenge answers and the ordering lock are kept: a folder (relative to the config file's folder) or `redis` (stores.redis, shared by every instance)",
        examples: ['redis', '/var/lib/turnpike/acme'],
      }),
    renewBefore: duration.prefault('30d').meta({
      description: 'renew this long before the certificate expires',
      examples: ['30d'],
    }),
    keyType: z
      .enum(['ecdsa-p256', 'rsa-2048'])
      .default('ecdsa-p256')
      .meta({ description: "the certificate's key", examples: ['rsa-2048'] }),
    eab: z
      .strictObject({
        kid: z
          .string()
          .min(1)
          .meta({ description: 'the key identifier the CA gave', examples: ['kid-1'] }),
        hmacKey: secret(z.string().min(1)).meta({
          description: 'the base64url HMAC key the CA gave',
          examples: ['${ACME_EAB_HMAC}'],
        }),
      })
      .optional()
      .meta({
        description: 'external account binding, for CAs that require one (ZeroSSL, Google, some private CAs)',
        examples: [{ kid: 'kid-1', hmacKey: '${ACME_EAB_HMAC}' }],
      }),
  })
  .superRefine((a, ctx) => {
    if (a.challenge !== 'dns-01') {
      a.domains.forEach((d, i) => {
        if (d.startsWith('*.'))
          ctx.addIssue({
            code: 'custom',
            path: ['domains', i],
            message: `${d}: a CA issues wildcard names only through dns-01, not ${a.challenge}`,
          });
      });
    }
    if (a.challenge === 'dns-01' && a.hook === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['hook'],
        message: 'dns-01 needs a hook (the program that sets the TXT record)',
      });
  });

export type AcmeSettings = z.output<typeof acmeSettings>;
