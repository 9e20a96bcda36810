// Who is the client? The peer address, unless the peer is a trusted proxy: then the rightmost
// X-Forwarded-For entry that is not itself trusted (as NGINX's real_ip_recursive does).
import { BlockList, isIPv4 } from 'node:net';

export class ProxyTrust {
  private readonly list: BlockList | null;

  constructor(cidrs: readonly string[]) {
    if (cidrs.length === 0) {
      this.list = null;
      return;
    }
    const list = new BlockList();
    for (const cidr of cidrs) {
      const [ip, bits] = cidr.split('/') as [string, string | undefined];
      const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
      if (bits === undefined) list.addAddress(ip, family);
      else list.addSubnet(ip, Number(bits), family);
    }
    this.list = list;
  }

  get empty(): boolean {
    return this.list === null;
  }

  trusts(ip: string): boolean {
    if (this.list === null || ip === '') return false;
    try {
      return this.list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
    } catch {
      return false;
    }
  }

  /** The client address given the peer and the X-Forwarded-For it sent. */
  clientIp(peer: string, forwardedFor: string | undefined): string {
    if (forwardedFor === undefined || !this.trusts(peer)) return peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (hop !== '' && !this.trusts(hop)) return hop;
      if (i === 0 && hop !== '') return hop;
    }
    return peer;
  }
}

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.indexOf('.') !== -1 ? address.slice(7) : address;
}
