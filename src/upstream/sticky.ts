// Session persistence through a signed cookie. The cookie names a target by an opaque token (a hash of its
// origin, never the address itself) and carries an HMAC so a client cannot pick a target by forging one.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { cookieValue } from '../http/cookies.ts';

export interface StickySettings {
  readonly cookie: string;
  readonly ttl?: number | undefined;
  readonly secret: string;
  readonly path: string;
  readonly secure: boolean;
  readonly sameSite: string;
}

/** A target's token: stable for its origin, so every worker and instance with the same secret agrees. */
export function stickyToken(targetKey: string): string {
  return createHash('sha256').update(targetKey).digest('base64url').slice(0, 12);
}

export class StickyCookie {
  readonly name: string;
  private readonly settings: StickySettings;
  private readonly attributes: string;

  constructor(settings: StickySettings) {
    this.name = settings.cookie;
    this.settings = settings;
    this.attributes =
      `; Path=${settings.path}; HttpOnly; SameSite=${settings.sameSite}` +
      (settings.secure ? '; Secure' : '') +
      (settings.ttl !== undefined ? `; Max-Age=${Math.max(1, Math.round(settings.ttl / 1000))}` : '');
  }

  /** The Set-Cookie value pinning a client to the target with this token. */
  serialize(token: string): string {
    const expires =
      this.settings.ttl !== undefined ? Math.ceil((Date.now() + this.settings.ttl) / 1000).toString(36) : '0';
    const payload = `${token}.${expires}`;
    return `${this.name}=${payload}.${this.sign(payload)}${this.attributes}`;
  }

  /** The token in a valid, unexpired cookie of the request's Cookie header, or undefined. */
  read(cookieHeader: string | undefined): string | undefined {
    if (cookieHeader === undefined) return undefined;
    const value = cookieValue(cookieHeader, this.name);
    if (value === undefined) return undefined;
    const lastDot = value.lastIndexOf('.');
    const firstDot = value.indexOf('.');
    if (firstDot <= 0 || lastDot === firstDot) return undefined;
    const payload = value.slice(0, lastDot);
    const given = Buffer.from(value.slice(lastDot + 1));
    const expected = Buffer.from(this.sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expires = parseInt(value.slice(firstDot + 1, lastDot), 36);
    if (expires !== 0 && expires * 1000 < Date.now()) return undefined;
    return value.slice(0, firstDot);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.settings.secret).update(payload).digest('base64url').slice(0, 22);
  }
}
