// Service discovery (issue 20): the top-level `discovery:` settings of each provider, and an upstream's
// `discover:` block, which names one provider and what it watches instead of listing `targets`.
import { isIP } from 'node:net';
import { z } from 'zod';
import { cidr, duration, PATTERNS, positiveDuration } from './primitives.ts';
import { secret } from './secret.ts';

/** A DNS server as node:dns `setServers` takes it: an IPv4 or [IPv6] address, with an optional port. */
const httpUrl = (example: string) =>
  z
    .string()
    .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), {
      message: `expected an http:// or https:// URL such as ${example}`,
    })
    .meta({ pattern: PATTERNS.httpUrl });

/** Consul's HTTP API (the local agent by default). */
const consulSettings = z
  .strictObject({
    address: httpUrl('http://127.0.0.1:8500')
      .default('http://127.0.0.1:8500')
      .meta({ description: "the Consul agent's HTTP API", examples: ['http://127.0.0.1:8500'] }),
    token: secret(z.string())
      .optional()
      .meta({
        description: 'an ACL token sent as X-Consul-Token (empty: none); redacted in config dumps',
        examples: ['${CONSUL_TOKEN:-}'],
      }),
    caFile: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'PEM file of the CA of an https:// address (default: the system CAs)',
        examples: ['consul-ca.pem'],
      }),
    wait: positiveDuration
      .prefault('5m')
      .refine((ms) => ms <= 600_000, { message: 'Consul waits 10m at most' })
      .meta({
        description: 'how long one blocking query waits for a change before Consul answers anyway',
        examples: ['5m'],
      }),
  })
  .prefault({})
  .meta({ description: 'how the Consul provider asks: address, token (health-passing instances, blocking queries)' });

/** The Kubernetes API (in-cluster service account by default). */
const kubernetesSettings = z
  .strictObject({
    apiServer: httpUrl('https://10.0.0.1:443')
      .optional()
      .meta({
        description: 'the API server (default in a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)',
        examples: ['https://kubernetes.default.svc'],
      }),
    tokenFile: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          "a bearer token file, read again at each list (tokens rotate); default: the pod's service account's",
        examples: ['/var/run/secrets/kubernetes.io/serviceaccount/token'],
      }),
    caFile: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: "PEM file of the API server's CA; default: the pod's service account's ca.crt",
        examples: ['/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'],
      }),
  })
  .prefault({})
  .meta({ description: 'how the Kubernetes provider reaches the API (EndpointSlices list+watch)' });

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

// Redis: services register a key per instance with a TTL (turnpike register, or the admin API); see
// src/discovery/redis-keys.ts for the key layout.
const redisDiscoverySettings = z
  .strictObject({
    prefix: z
      .string()
      .min(1)
      .regex(/^[^{}]*$/, { message: 'expected no { or } (the keys carry a {...} hash tag of their own)' })
      .default('turnpike:services:')
      .meta({ description: 'the start of every registration key', examples: ['turnpike:services:'] }),
    refresh: positiveDuration.prefault('1s').meta({
      description: 'how often the registered instances are listed (a new or expired one is seen within this)',
      examples: ['1s'],
    }),
  })
  .prefault({})
  .meta({ description: 'the Redis provider: uses stores.redis; services register with a TTL' });
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
    consul: consulSettings,
    kubernetes: kubernetesSettings,
    redis: redisDiscoverySettings,
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

const consulDiscover = z
  .strictObject({
    service: z
      .string()
      .min(1)
      .meta({ description: 'the Consul service whose passing instances are the targets', examples: ['search'] }),
    tags: z
      .array(z.string().min(1))
      .optional()
      .meta({ description: 'only instances carrying every one of these tags', examples: [['v2']] }),
    dc: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "the datacenter asked (default: the agent's)", examples: ['dc2'] }),
  })
  .meta({ description: 'targets from Consul: the health-passing instances of a service' });

export type ConsulDiscover = z.output<typeof consulDiscover>;

const dnsLabel = (what: string, example: string) =>
  z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: `expected a Kubernetes ${what} name such as ${example}` })
    .max(63);

const kubernetesDiscover = z
  .strictObject({
    namespace: dnsLabel('namespace', 'shop')
      .default('default')
      .meta({ description: 'the namespace of the service', examples: ['shop'] }),
    service: dnsLabel('service', 'billing').meta({
      description: 'the Service whose ready endpoints (EndpointSlices) are the targets',
      examples: ['billing'],
    }),
    port: z
      .union([
        z.int().min(1).max(65535),
        // A port name (IANA_SVC_NAME): lower case, a letter at least, 15 characters at most.
        z
          .string()
          .regex(/^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, {
            message: 'expected a port name such as http, or a port number such as 8080',
          })
          .max(15),
      ])
      .meta({ description: "the endpoints' port: its name in the Service (http) or its number", examples: ['http'] }),
  })
  .meta({ description: 'targets from Kubernetes: the ready endpoints of a Service (EndpointSlices list+watch)' });

export type KubernetesDiscover = z.output<typeof kubernetesDiscover>;

/** A service name as registered in Redis (no hash-tag braces, no glob characters). */
export const redisServiceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { message: 'expected a service name such as ledger' });

const redisDiscover = z
  .strictObject({
    service: redisServiceName.meta({
      description: 'the service whose registered instances are the targets',
      examples: ['ledger'],
    }),
  })
  .meta({ description: 'targets registered in stores.redis (turnpike register, or the admin API), each with a TTL' });

export type RedisDiscover = z.output<typeof redisDiscover>;

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
export const DISCOVERY_PROVIDERS = {
  dns: dnsDiscover,
  consul: consulDiscover,
  kubernetes: kubernetesDiscover,
  redis: redisDiscover,
  etcd: etcdDiscover,
} as const;

export const discover = z
  .strictObject({
    dns: dnsDiscover.optional(),
    consul: consulDiscover.optional(),
    kubernetes: kubernetesDiscover.optional(),
    redis: redisDiscover.optional(),
    etcd: etcdDiscover.optional(),
    scheme: z
      .enum(['http', 'https'])
      .default('http')
      .meta({ description: 'the scheme of the discovered targets', examples: ['https'] }),
    emptyGrace: duration.prefault('30s').meta({
      description: 'how long an empty answer (NXDOMAIN, no records) must last before it empties the targets',
      examples: ['30s'],
    }),
    // Checked in the loop for every provider (src/discovery/guard.ts): no DNS rebinding to internal addresses.
    allowNetworks: z
      .array(cidr)
      .min(1)
      .optional()
      .meta({
        description: 'only discovered addresses in these networks are used (a hostname target is then refused)',
        examples: [['10.20.0.0/16', 'fd00::/8']],
      }),
    denyNetworks: z
      .array(cidr)
      .min(1)
      .optional()
      .meta({
        description: 'discovered addresses in these networks are refused (checked before allowNetworks)',
        examples: [['127.0.0.0/8', '169.254.0.0/16']],
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
