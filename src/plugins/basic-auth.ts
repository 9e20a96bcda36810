// basic-auth: HTTP Basic (RFC 7617) against the consumers' `basic` credentials. A verified credential is cached
// for a minute, so the deliberately slow hash is paid once, not on every request.
import { z } from 'zod';
import { NO_CLAIMS, NO_SCOPES } from '../auth/identity.ts';
import { VerifiedCache, verifyPassword } from '../auth/password.ts';
import { explainAuthentication } from './explain-support.ts';
import { definePlugin, type RequestHook } from './types.ts';

const schema = z.strictObject({
  realm: z
    .string()
    .regex(/^[^"\\]*$/, { message: 'a realm cannot contain " or \\' })
    .default('turnpike')
    .meta({ description: 'the realm of the WWW-Authenticate challenge', examples: ['internal'] }),
  hideCredentials: z
    .boolean()
    .default(false)
    .meta({ description: 'remove Authorization before the request goes upstream' }),
});

export const basicAuthPlugin = definePlugin({
  name: 'basic-auth',
  phase: 'authenticate',
  description: 'Identifies a consumer by HTTP Basic credentials (scrypt or bcrypt password hashes)',
  schema,
  create(config, env) {
    const challenge = `Basic realm="${config.realm}", charset="UTF-8"`;
    const cache = new VerifiedCache();
    const hide = config.hideCredentials;
    const request: RequestHook = (ctx) => {
      if (ctx.identity !== null) return;
      const header = ctx.req.headers.authorization;
      const refuse = () => {
        (ctx.authChallenges ??= []).push(challenge);
      };
      if (header === undefined || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return refuse();
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) return refuse();
      const username = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const credential = env.consumers.byBasicUsername(username);
      if (credential === undefined) return refuse();
      const accept = () => {
        ctx.identity = {
          method: 'basic-auth',
          consumer: credential.consumer,
          subject: credential.consumer.name,
          claims: NO_CLAIMS,
          scopes: NO_SCOPES,
        };
        if (hide) ctx.removeRequestHeader('authorization');
      };
      const key = VerifiedCache.keyOf(username, password, credential.passwordHash);
      if (cache.has(key)) return accept();
      return verifyPassword(password, credential.passwordHash).then(
        (ok) => {
          if (!ok) return refuse();
          cache.add(key);
          accept();
        },
        () => refuse(),
      );
    };
    return {
      request,
      explain: (ctx) =>
        explainAuthentication(request, ctx, () =>
          ctx.req.headers.authorization === undefined
            ? 'no Authorization header'
            : 'unknown user, wrong password or not Basic credentials',
        ),
    };
  },
});
