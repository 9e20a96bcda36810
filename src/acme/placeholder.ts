// The self-signed certificate an ACME listener serves for its names until the CA's arrives: made in process with
// @peculiar/x509 (acme-client's own X.509 library, on node:crypto's WebCrypto), no openssl at run time.
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** An ECDSA P-256 certificate for `domains`, valid for a week from now (its issuer is itself: "Turnpike placeholder"). */
export async function makePlaceholder(domains: readonly string[], now = Date.now()): Promise<PemPair> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const subtle = webcrypto.subtle;
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const jwk = privateKey.export({ format: 'jwk' });
  const keys = {
    privateKey: await subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']),
    publicKey: await subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, alg, true, ['verify']),
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=${domains[0]}, O=Turnpike placeholder`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 7 * 86_400_000),
    keys: keys as never,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(domains.map((value) => ({ type: 'dns' as const, value }))),
    ],
  });
  return { cert: cert.toString('pem'), key: keyPem };
}
