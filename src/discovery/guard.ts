// The `allowNetworks` / `denyNetworks` of a `discover:` block, for every provider: a discovered address outside
// allowNetworks or inside denyNetworks is dropped from the set before it is applied (a name that DNS suddenly maps
// to 127.0.0.1, 169.254.169.254 or 10.0.0.1: DNS rebinding). Discovered targets are IP origins, so the address
// checked here is the one every connection goes to; a target given by hostname (Consul may give one) would be
// resolved again at connect time, so it is refused whenever a list is set.
import { isIP } from 'node:net';
import { CidrList } from '../http/cidr.ts';
import type { DiscoveredTarget } from './apply.ts';

export class NetworkGuard {
  readonly #allow: CidrList | undefined;
  readonly #deny: CidrList | undefined;

  constructor(allow: readonly string[] | undefined, deny: readonly string[] | undefined) {
    this.#allow = allow === undefined ? undefined : new CidrList(allow);
    this.#deny = deny === undefined ? undefined : new CidrList(deny);
  }

  /** A guard for the block's lists; undefined when it sets none (nothing to check). */
  static of(block: { allowNetworks?: readonly string[]; denyNetworks?: readonly string[] }): NetworkGuard | undefined {
    if (block.allowNetworks === undefined && block.denyNetworks === undefined) return undefined;
    return new NetworkGuard(block.allowNetworks, block.denyNetworks);
  }

  /** Whether the target at origin `url` may be used. */
  allows(url: string): boolean {
    const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) === 0) return false; // a hostname: its address is known only at connect time
    if (this.#deny?.has(host) === true) return false;
    return this.#allow === undefined || this.#allow.has(host);
  }

  /** The targets it allows, and the origins of those it refuses. */
  split(targets: readonly DiscoveredTarget[]): { kept: DiscoveredTarget[]; refused: string[] } {
    const kept: DiscoveredTarget[] = [];
    const refused: string[] = [];
    for (const t of targets) {
      if (this.allows(t.url)) kept.push(t);
      else refused.push(t.url);
    }
    return { kept, refused };
  }
}
