// Address lists: IPs and CIDRs, IPv4 and IPv6, checked the one way every list in Turnpike is (ip-filter, a
// listener's trustedProxies, the cache's purge allow list). One node:net BlockList per list, compiled at load.
// An IPv4-mapped IPv6 address (::ffff:10.1.2.3) matches IPv4 entries, and an IPv4 address matches ::ffff: entries.
import { BlockList, isIP } from 'node:net';

/** `10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`: an address, or an address and a prefix length its family allows. */
export function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  const ip = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export class CidrList {
  readonly #list = new BlockList();
  /** How many entries were given. */
  readonly size: number;

  /** Entries as `isCidr` accepts them (the config schema checks them); a malformed one throws here, at load. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const ip = slash === -1 ? entry : entry.slice(0, slash);
      const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
      if (slash === -1) this.#list.addAddress(ip, family);
      else this.#list.addSubnet(ip, Number(entry.slice(slash + 1)), family);
    }
    this.size = entries.length;
  }

  /** Whether `ip` is in the list. Never throws: anything that is not an address ('' included) is in no list. */
  has(ip: string): boolean {
    return this.#list.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  }
}
