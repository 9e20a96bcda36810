// Tokens a case asks for (`request.jwt`): signed here with the private key or secret the case names, so the
// gateway's `jwt` plugin verifies a real signature. A config that fetches its keys from a `jwksUri` gets, for the
// run, a JWKS served on loopback with the public halves of the cases' keys (the identity provider is not called).
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT, type JWK } from 'jose';

export interface CaseJwt {
  readonly key?: string | undefined;
  readonly secret?: string | undefined;
  readonly alg?: string | undefined;
  readonly kid?: string | undefined;
  readonly claims: Record<string, unknown>;
  readonly expiresIn: number;
}

export interface SigningKey {
  readonly key: KeyObject;
  readonly alg: string;
  /** The key's own kid (a JWK file's), if any. */
  readonly kid: string | undefined;
}

/** Reads a private key: a PEM (PKCS#8, PKCS#1, SEC1) or a JWK JSON file. Throws with a readable message. */
export function readSigningKey(file: string): SigningKey {
  const text = readFileSync(file, 'utf8');
  let key: KeyObject;
  let kid: string | undefined;
  if (text.trimStart().startsWith('{')) {
    const jwk = JSON.parse(text) as JWK;
    if (jwk.kty === 'oct') throw new Error('a symmetric JWK: give its secret as jwt.secret instead');
    key = createPrivateKey({ key: jwk as never, format: 'jwk' });
    kid = jwk.kid;
  } else {
    key = createPrivateKey(text);
  }
  return { key, alg: algorithmOf(key), kid };
}

function algorithmOf(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ES256';
      if (curve === 'secp384r1') return 'ES384';
      if (curve === 'secp521r1') return 'ES512';
      throw new Error(`an EC key on ${curve ?? 'an unknown curve'}: JWTs use P-256, P-384 or P-521`);
    }
    default:
      throw new Error(`a ${key.asymmetricKeyType ?? 'symmetric'} key cannot sign a JWT`);
  }
}

/** The token of `jwt`: iat now and exp now + expiresIn, unless the claims set them. */
export async function signCaseToken(jwt: CaseJwt, signing: SigningKey | undefined): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iat: now, exp: now + Math.ceil(jwt.expiresIn / 1000), ...jwt.claims };
  const key = signing?.key ?? createSecretKey(Buffer.from(jwt.secret ?? '', 'utf8'));
  const alg = jwt.alg ?? signing?.alg ?? 'HS256';
  const kid = jwt.kid ?? signing?.kid;
  try {
    return await new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key);
  } catch (err) {
    throw new Error(`request.jwt: cannot sign with ${alg}: ${(err as Error).message}`, { cause: err });
  }
}

/** A JWKS of the public halves of `keys` (with their kid and alg), served on 127.0.0.1 port 0. */
export async function serveJwks(keys: readonly { signing: SigningKey; kid: string | undefined }[]): Promise<{
  url: string;
  close: () => Promise<void>;
}> {
  const jwks: JWK[] = [];
  for (const { signing, kid } of keys) {
    const jwk = await exportJWK(createPublicKey(signing.key));
    jwks.push({ ...jwk, alg: signing.alg, use: 'sig', ...(kid === undefined ? {} : { kid }) });
  }
  const body = JSON.stringify({ keys: jwks });
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
