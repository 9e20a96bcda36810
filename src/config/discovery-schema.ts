// Service discovery (issue 20): the top-level `discovery:` settings of each provider, and an upstream's
// `discover:` block, which names one provider and what it watches instead of listing `targets`.
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration, PATTERNS, positiveDuration } from './primitives.ts';

/** A DNS server as node:dns `setServers` takes it: an IPv4 or [IPv6] address, with an optional port. */
const dnsServer = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+)(:\d{1,5})?$/, {
    message: 'expected a DNS server address such as 127.0.0.1:5353, 10.0.0.2 or [::1]:53',
  })
  // What setServers would refuse (999.0.0.1, port 70000) is refused here, not when the runtime applies the config.
  .refine((v) => isIP(/^\[(.*)\]/.exec(v)?.[1] ?? (v.split(':').length === 2 ? v.split(':')[0]! : v)) !== 0, {
    message: 'expected a DNS server address such as 127.0.0.1:5353, 10.0.0.2 or [::1]:53',
  })
  .refine((v) => Number(/\]:(\d+)$|^[^:]+:(\d+)$/.exec(v)?.slice(1).find(Boolean) ?? 53) <= 65535, {
    message: 'port out of range (1 to 65535)',
  })
  .meta({ description: 'a DNS server: an IP address with an optional port', examples: ['127.0.0.1:5353'] });

const etcdSettings = z
  .strictObject({
    endpoints: z
      .array(
        z.string().regex(new RegExp(PATTERNS.httpUrl), {
          message: 'expected an etcd client URL such as http://127.0.0.1:2379',
        }),
      )
      .min(1)
      .default(['http://127.0.0.1:2379'])
      .meta({ description: "etcd's client URLs, tried in order", examples: [['http://127.0.0.1:2379']] }),
    prefix: z
      .string()
      .min(1)
      .default('/turnpike/services/')
      .meta({
        description: 'where services register: one key per instance under <prefix><service>/, holding {"url": ...}',
        examples: ['/turnpike/services/'],
      }),
    timeout: positiveDuration.prefault('5s').meta({
      description: 'how long one call to etcd (a list) may take before it counts as a failure',
      examples: ['5s'],
    }),
  })
  .prefault({})
  .meta({ description: 'where the etcd provider watches: endpoints and key prefix' });

export const discoverySettings = z
  .strictObject({
    dns: z
      .strictObject({
        servers: z
          .array(dnsServer)
          .min(1)
          .optional()
          .meta({
            description: "the DNS servers asked (default: the system's resolver, /etc/resolv.conf)",
            examples: [['127.0.0.1:5353']],
          }),
        minRefresh: positiveDuration.prefault('5s').meta({
          description: 'the shortest time between two queries of one name: a floor under the TTL (SRV: the period)',
          examples: ['5s'],
        }),
        timeout: positiveDuration.prefault('5s').meta({
          description: 'how long one query waits for an answer before it counts as a failure',
          examples: ['2s'],
        }),
      })
      .prefault({})
      .meta({ description: 'how the DNS provider asks: servers, refresh floor, timeout' }),
    etcd: etcdSettings,
  })
  .prefault({})
  .meta({ description: 'settings shared by the discovery providers (upstreams name them in discover:)' });

export type DiscoverySettings = z.output<typeof discoverySettings>;

const hostname = z
  .string()
  .regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/, {
    message: 'expected a DNS name such as users.internal',
  });

const dnsDiscover = z
  .strictObject({
    srv: hostname.optional().meta({
      description:
        'an SRV name: its records give host, port and weight; the lowest priority is primary, others backups',
      examples: ['_http._tcp.orders.service.internal'],
    }),
    a: hostname.optional().meta({
      description: 'a name whose A and AAAA records are the targets (needs port)',
      examples: ['users.internal'],
    }),
    port: z
      .int()
      .min(1)
      .max(65535)
      .optional()
      .meta({ description: 'the port of the a: targets', examples: [8080] }),
  })
  .superRefine((d, ctx) => {
    if ((d.srv === undefined) === (d.a === undefined))
      ctx.addIssue({ code: 'custom', message: 'expected one of srv or a', path: [] });
    if (d.a !== undefined && d.port === undefined)
      ctx.addIssue({ code: 'custom', message: 'a: needs port (A records carry no port)', path: ['port'] });
    if (d.srv !== undefined && d.port !== undefined)
      ctx.addIssue({ code: 'custom', message: 'port applies to a:, SRV records carry their own', path: ['port'] });
  })
  .meta({ description: 'targets from DNS: SRV records, or A/AAAA records and a port' });

export type DnsDiscover = z.output<typeof dnsDiscover>;

const etcdDiscover = z
  .strictObject({
    service: z
      .string()
      .regex(/^[^/\s]+$/, { message: 'expected a service name without "/" or spaces' })
      .meta({
        description: 'the service: its instances are the keys under <prefix><service>/',
        examples: ['payments'],
      }),
  })
  .meta({ description: 'targets from etcd: one key per instance under the prefix, watched' });

export type EtcdDiscover = z.output<typeof etcdDiscover>;

/** The providers an upstream's `discover:` block can name; each has a file in src/discovery/. */
export const DISCOVERY_PROVIDERS = { dns: dnsDiscover, etcd: etcdDiscover } as const;

export const discover = z
  .strictObject({
    dns: dnsDiscover.optional(),
    etcd: etcdDiscover.optional(),
    scheme: z
      .enum(['http', 'https'])
      .default('http')
      .meta({ description: 'the scheme of the discovered targets', examples: ['https'] }),
    emptyGrace: duration.prefault('30s').meta({
      description: 'how long an empty answer (NXDOMAIN, no records) must last before it empties the targets',
      examples: ['30s'],
    }),
  })
  .superRefine((d, ctx) => {
    const named = Object.keys(DISCOVERY_PROVIDERS).filter((k) => d[k as keyof typeof DISCOVERY_PROVIDERS]);
    if (named.length !== 1)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `expected one provider: ${Object.keys(DISCOVERY_PROVIDERS).join(', ')}`,
      });
  })
  .meta({
    description: "where the upstream's targets come from at run time, instead of targets:",
    examples: [{ dns: { srv: '_http._tcp.orders.service.internal' }, emptyGrace: '30s' }],
  });

export type DiscoverConfig = z.output<typeof discover>;
