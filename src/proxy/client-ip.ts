// Who is the client? The peer address, unless the peer is a trusted proxy: then the rightmost
// X-Forwarded-For entry that is not itself trusted (as NGINX's real_ip_recursive does).
import { CidrList } from '../http/cidr.ts';

export class ProxyTrust {
  private readonly list: CidrList | null;

  constructor(cidrs: readonly string[]) {
    this.list = cidrs.length === 0 ? null : new CidrList(cidrs);
  }

  get empty(): boolean {
    return this.list === null;
  }

  trusts(ip: string): boolean {
    return this.list !== null && this.list.has(ip);
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
