// GCRA counters in Redis, shared by every gateway instance: one Lua script per request, so check-and-count is one
// atomic round trip (no read-modify-write race between instances). The script reads Redis's own clock (TIME), so
// instances with skewed clocks still agree. One key per counter holds the TATs (µs) of all its limits, and expires
// once every TAT has passed.
import { commandTimeoutOf, offlineQueueOf, type RedisClient } from '../stores/redis-client.ts';
import { RedisScript } from '../stores/redis-script.ts';
import { decide, intervalUs, peekDecision, toleranceUs } from './gcra.ts';
import type { LimitSpec, RateDecision, RateStore } from './shared-store.ts';

// ARGV: n, then T and τ (µs) of each limit. Returns { allowed, retry µs, backlog µs of each limit }.
// Same arithmetic as gcraConsume (src/limits/gcra.ts); `%d` keeps µs timestamps exact (tostring would print 1.8e+15).
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local tats = {}
local stored = redis.call('GET', KEYS[1])
if stored then for v in string.gmatch(stored, '%d+') do tats[#tats + 1] = tonumber(v) end end
local backlog = {}
local retry = 0
for i = 1, n do
  local tat = tats[i]
  local d = 0
  if tat ~= nil and tat > now then d = tat - now end
  backlog[i] = d
  local over = d - tonumber(ARGV[2 * i + 1])
  if over > retry then retry = over end
end
local allowed = 0
if retry == 0 then
  allowed = 1
  local out = {}
  local longest = 0
  for i = 1, n do
    backlog[i] = backlog[i] + tonumber(ARGV[2 * i])
    out[i] = string.format('%d', now + backlog[i])
    if backlog[i] > longest then longest = backlog[i] end
  end
  redis.call('SET', KEYS[1], table.concat(out, ' '), 'PX', math.ceil(longest / 1000))
end
local reply = { allowed, retry }
for i = 1, n do reply[i + 2] = backlog[i] end
return reply
`;
const GCRA = new RedisScript(SCRIPT);
// Read-only: the backlog (µs) of each of ARGV[1] limits on Redis's clock; nothing is written.
const PEEK = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local reply = {}
local i = 0
local stored = redis.call('GET', KEYS[1])
if stored then for v in string.gmatch(stored, '%d+') do
  i = i + 1
  local d = tonumber(v) - now
  if d < 0 then d = 0 end
  reply[i] = d
end end
for j = i + 1, tonumber(ARGV[1]) do reply[j] = 0 end
return reply
`);

export interface RedisRateStoreOptions {
  /** Prepended to every key. */
  readonly prefix?: string;
  /**
   * A call slower than this rejects. Only used when the client has no `commandTimeout` of its own (the shared
   * `stores.redis` client has one), so a request never waits on a hung Redis.
   */
  readonly timeoutMs?: number;
}

export class RedisRateStore implements RateStore {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly guardMs: number;
  private readonly waitMs: number;
  private connecting: Promise<void> | null = null;

  constructor(redis: RedisClient, options: RedisRateStoreOptions = {}) {
    this.redis = redis;
    this.prefix = options.prefix ?? 'turnpike:rl:';
    this.guardMs = commandTimeoutOf(redis) ? 0 : (options.timeoutMs ?? 1000);
    this.waitMs = commandTimeoutOf(redis) || (options.timeoutMs ?? 1000);
  }

  consume(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> {
    const args: (string | number)[] = [limits.length];
    for (const spec of limits) args.push(intervalUs(spec), toleranceUs(spec));
    const call = this.run(this.prefix + key, args).then((reply) => {
      const [allowed, retryUs, ...backlog] = reply;
      return decide(allowed === 1, backlog, limits, retryUs!);
    });
    return this.guardMs > 0 ? withTimeout(call, this.guardMs) : call;
  }

  peek(key: string, limits: readonly LimitSpec[]): Promise<RateDecision> {
    const call = this.run(this.prefix + key, [limits.length], PEEK).then((backlog) =>
      peekDecision(backlog.slice(0, limits.length), limits),
    );
    return this.guardMs > 0 ? withTimeout(call, this.guardMs) : call;
  }

  private async run(key: string, args: (string | number)[], script = GCRA): Promise<number[]> {
    const status = this.redis.status;
    // A client without an offline queue rejects calls until it is ready: while it is (re)connecting, wait for it
    // (bounded), so the first requests after start are counted rather than failed. A client that is down and
    // waiting to retry fails the call at once.
    if ((status === 'connecting' || status === 'connect') && !offlineQueueOf(this.redis)) await this.ready();
    return (await script.run(this.redis, [key], args)) as number[];
  }

  private ready(): Promise<void> {
    return (this.connecting ??= new Promise<void>((resolve, reject) => {
      const redis = this.redis;
      const settle = (err?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('close', onClose);
        this.connecting = null;
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => settle();
      const onClose = () => settle(new Error('redis connection closed while connecting'));
      const timer = setTimeout(() => settle(new Error(`redis not connected within ${this.waitMs} ms`)), this.waitMs);
      redis.once('ready', onReady);
      redis.once('close', onClose);
    }));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
