// Which config values are secrets: a schema marks them with `secret(...)`, so GET /api/config redacts them by
// knowing the schema (src/admin/redact.ts), not by guessing from key names.
import { z } from 'zod';

/** `value`: the whole value; `url`: the user and password of a URL; `jwk`: a JWK's private members. */
export type SecretKind = 'value' | 'url' | 'jwk';

export const SECRETS = z.registry<{ kind: SecretKind }>();

/** Marks `schema` as a secret (register it before wrapping it in optional/default: the walker unwraps those). */
export function secret<T extends z.ZodType>(schema: T, kind: SecretKind = 'value'): T {
  SECRETS.add(schema, { kind });
  return schema;
}
