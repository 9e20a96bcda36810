// concurrency: at most `max` requests of a route in progress at once; the next `queue` wait (FIFO) up to
// `queueTimeout` for a slot, the rest get 503. A slot is held until the exchange ends (the response closed).
import { z } from 'zod';
import { duration } from '../config/primitives.ts';
import { problemReply } from '../pipeline/problem.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import { continues } from './explain-support.ts';
import { definePlugin } from './types.ts';

const schema = z.strictObject({
  max: z
    .int()
    .positive()
    .meta({ description: 'requests of the route in progress at once', examples: [100] }),
  queue: z
    .int()
    .nonnegative()
    .default(0)
    .meta({ description: 'requests that may wait (first come, first served) for a slot', examples: [50] }),
  queueTimeout: duration
    .prefault('1s')
    .meta({ description: 'the longest a queued request waits; then 503', examples: ['500ms'] }),
});

export const concurrencyPlugin = definePlugin({
  name: 'concurrency',
  phase: 'limit',
  description: 'At most max requests of the route in progress; queue more (FIFO) for up to queueTimeout, then 503',
  schema,
  create(config, env) {
    const { max, queue, queueTimeout } = config;
    const store = env.memoryConcurrency;
    const limited = (ctx: RequestContext): Reply => {
      ctx.errorCode = 'TP_CONCURRENCY_LIMITED';
      const why =
        queue === 0
          ? `more than ${max} requests in progress`
          : `more than ${max} requests in progress and ${queue} waiting, or no slot within ${queueTimeout} ms`;
      return problemReply('TP_CONCURRENCY_LIMITED', why, ctx.requestId, { 'retry-after': '1' });
    };

    return {
      // Taking a slot to see whether one is free would hold it: the limit is said, not tried.
      explain: () =>
        continues(
          `at most ${max} in progress${queue > 0 ? `, ${queue} more wait up to ${queueTimeout} ms` : ''} (not tried)`,
          {
            max,
            queue,
            queueTimeout,
          },
        ),
      request(ctx) {
        // Route name + plugin position: each concurrency plugin of each route has its own slots.
        const key = `${ctx.routeName}#${ctx.reached}`;
        let got: boolean | Promise<boolean>;
        try {
          got = store.acquire(key, max, queue, queueTimeout);
        } catch (err) {
          return unavailable(ctx, err);
        }
        if (got === true) {
          ctx.whenDone(() => store.release(key));
          return undefined;
        }
        if (got === false) return limited(ctx);

        // Queued. If the client leaves first, a slot granted later is handed straight back.
        let state: 'waiting' | 'holding' | 'ended' = 'waiting';
        ctx.whenDone(() => {
          if (state === 'holding') store.release(key);
          state = 'ended';
        });
        return got.then(
          (granted) => {
            if (!granted) return limited(ctx);
            if (state === 'ended') {
              store.release(key);
              return limited(ctx);
            }
            state = 'holding';
            return undefined;
          },
          (err: unknown) => unavailable(ctx, err),
        );
      },
    };

    function unavailable(ctx: RequestContext, err: unknown): Reply {
      env.logThrottled('concurrency:store', 'concurrency store unavailable; answering 503', {
        route: ctx.routeName,
        error: err instanceof Error ? err.message : String(err),
      });
      ctx.errorCode = 'TP_STORE_UNAVAILABLE';
      return problemReply('TP_STORE_UNAVAILABLE', 'the concurrency store is unavailable', ctx.requestId, {
        'retry-after': '1',
      });
    }
  },
});
