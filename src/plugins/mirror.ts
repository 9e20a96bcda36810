// mirror: copies a share of a route's requests to another upstream (shadow traffic) and discards its answers.
// The real request never waits for the copy and never fails because of it: the body is tapped as it streams
// upstream (the copy is kept only within maxBodySize), the copy is sent once the body is whole, and at most
// `queue` copies are in flight per route; past it a copy is dropped and counted (turnpike:mirror:dropped).
// Phase `cache`, the last before the terminal: the copy is the request as it goes upstream (authenticated,
// validated, rewritten); list it after `cache` to mirror only what the cache does not answer.
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { share, size } from '../config/primitives.ts';
import { CHANNELS, publishRequest } from '../observability/events.ts';
import { hasRequestBody, tapRequestBody } from '../pipeline/request-body.ts';
import { upstreamRequestHeaders, type UpstreamHeaderPolicy } from '../proxy/headers.ts';
import type { RequestContext } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { continues } from './explain-support.ts';
import { definePlugin } from './types.ts';

const schema = z.strictObject({
  upstream: z
    .string()
    .min(1)
    .meta({
      description: 'the upstream that gets the copies (its answers are discarded)',
      examples: ['checkout-next'],
    }),
  share: share
    .prefault('100%')
    .meta({ description: 'the share of requests copied, counted (every fifth for 20%), not drawn', examples: ['20%'] }),
  maxBodySize: size
    .prefault('1mb')
    .meta({ description: 'requests with a larger body are not mirrored (and counted)', examples: ['1mb'] }),
  queue: z
    .int()
    .positive()
    .default(100)
    .meta({ description: 'copies in flight at once for the route; more are dropped (and counted)', examples: [100] }),
});

type MirrorConfig = z.infer<typeof schema>;

/** Kept across reloads (env.keep), so the queue bound holds while copies of the previous config are in flight. */
interface MirrorState {
  inFlight: number;
  /** The sampling counter, in ten-thousandths of a request. */
  credit: number;
}

/** Why a copy was not sent, the `reason` of turnpike:mirror:dropped and the metric. */
type DropReason = 'queue' | 'body' | 'unavailable';

const SCALE = 10_000;

export const mirrorPlugin = definePlugin({
  name: 'mirror',
  phase: 'cache',
  description:
    'Copies a share of requests (method, path, headers, body up to maxBodySize) to another upstream with X-Turnpike-Mirror: true; answers discarded, never delays the request',
  schema,
  check(config: MirrorConfig, env) {
    const problem = env.upstreamProblem(config.upstream);
    return problem === undefined ? [] : [{ path: ['upstream'], message: problem, code: 'TP_CONFIG_INVALID' }];
  },
  create(config, env) {
    const pool = env.upstreams.get(config.upstream);
    if (pool === undefined) throw new Error(`mirror: upstream "${config.upstream}" is not an HTTP upstream`);
    const { maxBodySize, queue } = config;
    const step = Math.round(config.share * SCALE);
    const state = env.keep<MirrorState>(`mirror|${env.routeName}|${config.upstream}`, () => ({
      inFlight: 0,
      credit: 0,
    }));
    const policy: UpstreamHeaderPolicy = {
      preserveHost: pool.config.preserveHost,
      ...env.gatewayHeaders,
      overrideHeaders: null,
    };
    const timeouts = { headers: pool.config.timeouts.response, body: pool.config.timeouts.idle };
    const drop = (ctx: RequestContext, reason: DropReason): void =>
      publishRequest(CHANNELS.mirrorDropped, ctx, { upstream: config.upstream, reason });
    const percent = `${Math.round(config.share * 10_000) / 100}%`;
    // This config's copies in flight, each with its abort: given up when the snapshot is retired or at stop.
    const copies = new Set<Copy>();

    return {
      close() {
        for (const copy of copies) copy.abort();
      },
      explain: () =>
        continues(
          `copies ${percent} of requests to upstream "${config.upstream}" (bodies up to ${maxBodySize} bytes; ${state.inFlight} of ${queue} copies in flight)`,
          { upstream: config.upstream, share: config.share, maxBodySize, queue, inFlight: state.inFlight },
        ),
      request(ctx) {
        // Counted, not drawn: 20% is every fifth request, exactly, per route and process.
        state.credit += step;
        if (state.credit < SCALE) return;
        state.credit -= SCALE;
        if (state.inFlight >= queue) return drop(ctx, 'queue');
        const length = ctx.req.headers['content-length'];
        if (ctx.requestBody === null && length !== undefined && Number(length) > maxBodySize) return drop(ctx, 'body');
        state.inFlight++;
        const copy = new Copy(ctx, pool, policy, timeouts, state, copies);
        // A body a plugin already holds whole (xml, json-transform) is what goes upstream.
        if (ctx.requestBody !== null) return copy.send(ctx.requestBody);
        if (!hasRequestBody(ctx)) return copy.send(null);
        let chunks: Buffer[] | null = [];
        let received = 0;
        tapRequestBody(ctx, {
          write(chunk) {
            if (chunks === null) return;
            received += chunk.length;
            if (received <= maxBodySize) {
              chunks.push(chunk);
              return;
            }
            chunks = null;
            copy.release();
            drop(ctx, 'body');
          },
          end() {
            if (chunks !== null) copy.send(Buffer.concat(chunks, received));
          },
        });
        // The body may never be read whole (a local answer, the client gone): the slot is not kept for it.
        ctx.whenDone(() => {
          if (!copy.sent) copy.release();
        });
        return undefined;
      },
    };
  },
});

/** One copy: holds a queue slot until its exchange with the mirror is over (or it is given up). */
class Copy {
  sent = false;
  private released = false;
  private controller: Dispatcher.DispatchController | null = null;
  private readonly copies: Set<Copy>;
  private readonly ctx: RequestContext;
  private readonly pool: UpstreamPool;
  private readonly policy: UpstreamHeaderPolicy;
  private readonly timeouts: { readonly headers: number; readonly body: number };
  private readonly state: MirrorState;

  constructor(
    ctx: RequestContext,
    pool: UpstreamPool,
    policy: UpstreamHeaderPolicy,
    timeouts: { readonly headers: number; readonly body: number },
    state: MirrorState,
    copies: Set<Copy>,
  ) {
    this.copies = copies;
    copies.add(this);
    this.ctx = ctx;
    this.pool = pool;
    this.policy = policy;
    this.timeouts = timeouts;
    this.state = state;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.state.inFlight--;
    this.copies.delete(this);
  }

  /** Gives the copy up (its snapshot retired, or the gateway stopping). */
  abort(): void {
    if (this.controller !== null) this.controller.abort(new Error('mirror copy given up'));
    else this.release();
  }

  send(body: Buffer | null): void {
    if (this.released || this.sent) return;
    this.sent = true;
    const ctx = this.ctx;
    // The mirror's pool must not change what the real request's sticky cookie does.
    const pinned = ctx.stickyPinned;
    const lease = this.pool.beginRequest(ctx);
    ctx.stickyPinned = pinned;
    if (typeof lease === 'string') {
      this.release();
      publishRequest(CHANNELS.mirrorDropped, ctx, { upstream: this.pool.name, reason: 'unavailable' });
      return;
    }
    const all = upstreamRequestHeaders(ctx, this.policy, lease.target.origin.host, false);
    // The body is sent whole: undici frames it (Content-Length of these bytes, whatever the client said).
    const headers: string[] = [];
    for (let i = 0; i < all.length; i += 2) {
      const name = all[i]!;
      if (name !== 'content-length' && name !== 'x-turnpike-mirror') headers.push(name, all[i + 1]!);
    }
    headers.push('x-turnpike-mirror', 'true');
    let over = false;
    const finish = (failed: boolean): void => {
      if (over) return;
      over = true;
      lease.observe(failed);
      lease.end();
      this.release();
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (controller) => {
        this.controller = controller;
      },
      onResponseStart(_controller, status) {
        lease.observe(status >= 500);
      },
      onResponseData() {},
      onResponseEnd() {
        finish(false);
      },
      onResponseError() {
        finish(true);
      },
    };
    try {
      lease.target.dispatcher.dispatch(
        {
          path: ctx.path + ctx.query,
          method: ctx.req.method!,
          headers,
          body,
          headersTimeout: this.timeouts.headers,
          bodyTimeout: this.timeouts.body,
        },
        handler,
      );
    } catch {
      finish(true);
    }
  }
}
