// A Lua script run by its SHA-1 (EVALSHA), sent whole only when the server does not know it yet: one short
// command per call instead of the script's text.
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-client.ts';

export class RedisScript {
  private readonly lua: string;
  private readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number | Buffer)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // First call on this server (or after SCRIPT FLUSH / a restart): send the script itself once.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
