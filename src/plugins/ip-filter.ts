// ip-filter: allow or deny requests by client address (CIDR lists), before authentication runs.
// Decides on ctx.clientIp, which is the peer unless the peer is a listener's trusted proxy, so a client
// cannot pick its own address with X-Forwarded-For.
import { isIP } from 'node:net';
import { z } from 'zod';
import { cidr } from '../config/primitives.ts';
import { CidrList } from '../http/cidr.ts';
import { problemReply } from '../pipeline/problem.ts';
import { continues, explainByRunning } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

const schema = z
  .strictObject({
    allow: z
      .array(cidr)
      .min(1)
      .optional()
      .meta({ description: 'Only these addresses/CIDRs may pass (IPv4 and IPv6)', examples: [['10.0.0.0/8', '::1']] }),
    deny: z
      .array(cidr)
      .min(1)
      .optional()
      .meta({
        description: 'These addresses/CIDRs are refused (checked before allow)',
        examples: [['203.0.113.0/24']],
      }),
  })
  .refine((c) => c.allow !== undefined || c.deny !== undefined, { message: 'ip-filter needs allow, deny or both' });

export const ipFilterPlugin = definePlugin({
  name: 'ip-filter',
  phase: 'access',
  description:
    'Allows or denies requests by client address: allow and/or deny lists of IPs or CIDRs (deny wins; with allow, anything else is refused)',
  schema,
  create(config) {
    const allow = config.allow ? new CidrList(config.allow) : null;
    const deny = config.deny ? new CidrList(config.deny) : null;
    const request: RequestHook = (ctx) => {
      const ip = ctx.clientIp;
      // An address a list cannot parse is in none of them.
      if (deny !== null && deny.has(ip)) return problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId);
      if (allow !== null) return allow.has(ip) ? undefined : problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId);
      // Deny only: an address we cannot parse (garbage in a trusted proxy's X-Forwarded-For) cannot be shown
      // to be outside the deny list, so it is refused (fail closed).
      return isIP(ip) === 0 ? problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId) : undefined;
    };
    return {
      request,
      explain: (ctx) =>
        explainByRunning(request, ctx, `client ${ctx.clientIp} refused`, () =>
          continues(`client ${ctx.clientIp} allowed`, { clientIp: ctx.clientIp }),
        ),
    };
  },
});
