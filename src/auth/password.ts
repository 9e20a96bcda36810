// Password hashes for Basic credentials: scrypt (what `turnpike hash-password` prints) or bcrypt. Verification
// is asynchronous (scrypt runs on libuv's thread pool), and a verified credential is remembered briefly in a
// bounded cache keyed by a digest of the credential, so a hash is computed once per TTL, not per request.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

const N = 16384;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** `scrypt$N$r$p$salt$hash`, salt and hash in base64url. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (hash.startsWith('scrypt$')) {
    const [, n, r, p, salt, expected] = hash.split('$');
    const want = Buffer.from(expected!, 'base64url');
    const got = await scryptAsync(password, Buffer.from(salt!, 'base64url'), Number(n), Number(r), Number(p));
    return got.length === want.length && timingSafeEqual(got, want);
  }
  return bcrypt.compare(password, hash);
}

/** Credentials verified recently: digest of (user, password, hash) → expiry. Bounded; oldest out first. */
export class VerifiedCache {
  private readonly entries = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(ttlMs = 60_000, max = 10_000) {
    this.ttlMs = ttlMs;
    this.max = max;
  }

  static keyOf(username: string, password: string, hash: string): string {
    return createHash('sha256')
      .update(username)
      .update('\0')
      .update(password)
      .update('\0')
      .update(hash)
      .digest('base64url');
  }

  has(key: string): boolean {
    const expires = this.entries.get(key);
    if (expires === undefined) return false;
    if (expires < Date.now()) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  add(key: string): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, Date.now() + this.ttlMs);
  }
}
