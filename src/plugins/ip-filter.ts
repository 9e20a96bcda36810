// ip-filter: allow or deny requests by client address (CIDR lists), before authentication runs.
// Decides on ctx.clientIp, which is the peer unless the peer is a listener's trusted proxy, so a client
// cannot pick its own address with X-Forwarded-For.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { cidr } from '../config/primitives.ts';
import { problemReply } from '../pipeline/problem.ts';
import { definePlugin } from './types.ts';

const schema = z
  .strictObject({
    allow: z.array(cidr).min(1).optional().meta({ description: 'Only these addresses/CIDRs may pass (IPv4 and IPv6)' }),
    deny: z.array(cidr).min(1).optional().meta({ description: 'These addresses/CIDRs are refused (checked before allow)' }),
  })
  .refine((c) => c.allow !== undefined || c.deny !== undefined, { message: 'ip-filter needs allow, deny or both' });

/** One BlockList for v4 and v6 entries; it also matches IPv4-mapped IPv6 (::ffff:10.1.2.3) against v4 rules. */
export function compileAddressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    const ip = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(entry.slice(slash + 1)), family);
  }
  return list;
}

export const ipFilterPlugin = definePlugin({
  name: 'ip-filter',
  phase: 'access',
  description: 'Allows or denies requests by client address: allow and/or deny lists of IPs or CIDRs (deny wins; with allow, anything else is refused)',
  schema,
  create(config) {
    const allow = config.allow ? compileAddressList(config.allow) : null;
    const deny = config.deny ? compileAddressList(config.deny) : null;
    return {
      request(ctx) {
        const ip = ctx.clientIp;
        // BlockList.check never throws: an address it cannot parse matches nothing.
        const type = ip.includes(':') ? 'ipv6' : 'ipv4';
        if (deny !== null && deny.check(ip, type)) return problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId);
        if (allow !== null) return allow.check(ip, type) ? undefined : problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId);
        // Deny only: an address we cannot parse (garbage in a trusted proxy's X-Forwarded-For) cannot be shown
        // to be outside the deny list, so it is refused (fail closed).
        return isIP(ip) === 0 ? problemReply('TP_IP_FORBIDDEN', undefined, ctx.requestId) : undefined;
      },
    };
  },
});
