// Mutual TLS: who the client is, once its certificate has been verified, and how that travels upstream.
import type { TLSSocket } from 'node:tls';

export interface ClientIdentity {
  /** Subject as an RFC 4514 string, most specific RDN first: `CN=alice,OU=ops,O=Acme,C=FR`. */
  readonly subject: string;
  /** Issuer, same format. */
  readonly issuer: string;
  /** SHA-256 of the DER certificate, lowercase hex without separators. */
  readonly fingerprint256: string;
  /** Serial number, uppercase hex, as Node prints it. */
  readonly serialNumber: string;
}

// One lookup per connection: HTTP/1.1 keep-alive and HTTP/2 ask again for every request.
const cache = new WeakMap<TLSSocket, ClientIdentity | null>();

/**
 * The verified client certificate of a connection, or null when there is none: no certificate sent, or one
 * that did not verify against clientAuth.ca (`socket.authorized` false, which only happens in optional mode;
 * require mode ends such handshakes).
 */
export function clientIdentity(socket: TLSSocket): ClientIdentity | null {
  const known = cache.get(socket);
  if (known !== undefined) return known;
  let identity: ClientIdentity | null = null;
  if (socket.authorized) {
    const peer = socket.getPeerX509Certificate();
    if (peer !== undefined) {
      identity = {
        subject: rfc4514(peer.subject),
        issuer: rfc4514(peer.issuer),
        fingerprint256: peer.fingerprint256.replaceAll(':', '').toLowerCase(),
        serialNumber: peer.serialNumber,
      };
    }
  }
  cache.set(socket, identity);
  return identity;
}

// Node prints names one RDN per line in certificate order (root-most first), values already escaped per
// RFC 2253/4514 (`\,` `\+` `\"` ...) and control characters escaped, so a line never holds a raw newline.
// RFC 4514 lists RDNs in the reverse order, joined by commas.
function rfc4514(multiline: string): string {
  return multiline
    .split('\n')
    .filter((line) => line.length > 0)
    .reverse()
    .map((line) => line.replaceAll(' + ', '+'))
    .join(',');
}

/**
 * The value of `clientAuth.forwardHeader`:
 *
 *   subject="CN=alice,O=Acme";fingerprint=sha256:3f1c...e9 (64 hex digits)
 *
 * `subject` is a quoted string in which `"` and `\` are backslash-escaped (as in HTTP quoted-string),
 * after non-ASCII characters became RFC 4514 `\XX` escapes of their UTF-8 bytes, so the value is plain
 * ASCII (header values cannot carry UTF-8 reliably). The runtime must remove any copy of this header the
 * client sent, on every request, whether or not a certificate was presented: otherwise a client could
 * claim an identity.
 */
export function formatClientCertHeader(identity: ClientIdentity): string {
  const ascii = identity.subject.replace(/[^\x20-\x7e]/gu, (c) =>
    Array.from(Buffer.from(c, 'utf8'), (b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  const quoted = ascii.replace(/["\\]/g, (c) => `\\${c}`);
  return `subject="${quoted}";fingerprint=sha256:${identity.fingerprint256}`;
}
