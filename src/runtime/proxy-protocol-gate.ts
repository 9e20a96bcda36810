// PROXY protocol on listeners (`proxyProtocol: true`): a trusted peer (a load balancer in front) must start
// each connection with a PROXY v1/v2 header naming the real client; that address then stands for the peer.
// Untrusted peers are served as they are and no header is read from them, so nobody else can claim an address.
import type { Socket } from 'node:net';
import { readProxyHeader } from '../l4/proxy-protocol.ts';
import { normalizeAddress, type ProxyTrust } from '../proxy/client-ip.ts';

const kClient = Symbol('turnpike.proxyProtocolClient');

export interface ClientAddress {
  readonly address: string;
  readonly port: number;
}

/** A connection gate for ListenSockets: resolves false to refuse the connection. */
export function proxyProtocolGate(
  trust: ProxyTrust,
  onRefused: (peer: string, reason: string) => void,
): (socket: Socket) => Promise<boolean> {
  return async (socket) => {
    const peer = normalizeAddress(socket.remoteAddress);
    if (trust.empty || !trust.trusts(peer)) return true;
    try {
      const header = await readProxyHeader(socket);
      if (header.source !== undefined) {
        (socket as unknown as Record<symbol, ClientAddress>)[kClient] = {
          address: normalizeAddress(header.source.address),
          port: header.source.port,
        };
      }
      return true;
    } catch (err) {
      onRefused(peer, (err as { reason?: string }).reason ?? (err as Error).message);
      return false;
    }
  };
}

type Wrapped = Socket & { _parent?: Socket | null; stream?: Socket };

/** The socket a wrapper stands for: a TLS socket's raw socket, or (h2c) the stream a JSStreamSocket wraps. */
function inner(s: Wrapped): Wrapped | undefined {
  return (s._parent ?? s.stream ?? undefined) as Wrapped | undefined;
}

/** The client a PROXY header named for this connection (through TLS and h2c wrappers), if any. */
export function proxiedClient(socket: Socket | undefined): ClientAddress | undefined {
  let s = socket as Wrapped | undefined;
  for (let i = 0; s != null && i < 4; i++, s = inner(s)) {
    const found = (s as unknown as Record<symbol, ClientAddress | undefined>)[kClient];
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The peer address of a connection, looking through wrappers that do not carry it themselves. */
export function peerAddressOf(socket: Socket | undefined): string | undefined {
  let s = socket as Wrapped | undefined;
  for (let i = 0; s != null && i < 4; i++, s = inner(s)) if (s.remoteAddress !== undefined) return s.remoteAddress;
  return undefined;
}
