// One request's aggregate: starts every call whose `after` is satisfied (so independent calls run in parallel),
// starts a dependent call once the calls it waits for answered, skips it when one of them failed, and ends with
// the answers (failed optional calls null) or with the first required call that failed.
import type { ErrorCode } from '../errors.ts';
import type { Template } from '../config/aggregate-template.ts';
import type { RequestContext } from '../request-context.ts';
import { PooledCall, type CallAnswer, type CallFailure, type CallResult, type CallRoute } from './call.ts';
import { headerSafe, render } from './render.ts';

/** A call as compiled from the config. */
export interface CallPlan {
  readonly name: string;
  readonly upstream: string;
  readonly route: CallRoute;
  readonly path: Template;
  readonly query: readonly (readonly [string, Template])[];
  readonly headers: readonly (readonly [string, Template])[];
  readonly forwardHeaders: readonly string[];
  readonly optional: boolean;
  /** Indexes of the calls it waits for. */
  readonly after: readonly number[];
}

export interface AggregatePlan {
  readonly calls: readonly CallPlan[];
  /** The whole aggregate's time (ms; 0: none). */
  readonly timeout: number;
  /** The gateway's own headers of every call (X-Forwarded-*, request id, consumer), pushed onto a list. */
  readonly gatewayHeaders: (ctx: RequestContext, out: string[]) => void;
}

/** How the aggregate ended: the answers in call order (null: failed or skipped optional), or the failed call. */
export type Outcome =
  | { readonly ok: true; readonly answers: readonly (CallAnswer | null)[]; readonly partial: boolean }
  | {
      readonly ok: false;
      readonly call: string;
      readonly code: ErrorCode;
      readonly cause: ErrorCode;
      readonly detail: string;
    };

type State = 'waiting' | 'running' | 'ok' | 'failed';

export class Aggregation {
  private readonly ctx: RequestContext;
  private readonly plan: AggregatePlan;
  private readonly finish: (outcome: Outcome) => void;
  private readonly states: State[];
  private readonly answers: (CallAnswer | null)[];
  private readonly byName = new Map<string, CallAnswer>();
  private readonly running = new Map<number, PooledCall>();
  private settled = 0;
  private partial = false;
  private over = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(ctx: RequestContext, plan: AggregatePlan, finish: (outcome: Outcome) => void) {
    this.ctx = ctx;
    this.plan = plan;
    this.finish = finish;
    this.states = plan.calls.map(() => 'waiting');
    this.answers = plan.calls.map(() => null);
  }

  start(): void {
    this.ctx.res.once('close', this.onClientClose);
    if (this.plan.timeout > 0) this.timer = setTimeout(this.onTimeout, this.plan.timeout);
    this.advance();
  }

  /** Starts what may start, skips what cannot; ends when every call settled. */
  private advance(): void {
    const calls = this.plan.calls;
    for (let i = 0; i < calls.length && !this.over; i++) {
      if (this.states[i] !== 'waiting') continue;
      const call = calls[i]!;
      let ready = true;
      let failedDep: string | null = null;
      for (const d of call.after) {
        const s = this.states[d];
        if (s === 'failed') failedDep ??= calls[d]!.name;
        else if (s !== 'ok') ready = false;
      }
      if (failedDep !== null) {
        this.settle(i, {
          ok: false,
          failure: { cause: 'TP_AGGREGATE_CALL_FAILED', detail: `skipped: "${failedDep}", which it waits for, failed` },
        });
        return; // settle() advanced again: a skip may decide the calls that wait for this one
      }
      if (ready) this.launch(i);
    }
    if (!this.over && this.settled === calls.length)
      this.end({ ok: true, answers: this.answers, partial: this.partial });
  }

  private launch(i: number): void {
    const call = this.plan.calls[i]!;
    this.states[i] = 'running';
    const encode = encodeURIComponent;
    let path = render(call.path, this.ctx, this.byName, encode);
    const headers: string[] = [];
    for (const name of call.forwardHeaders) {
      if (this.ctx.removeRequestHeaders?.has(name) === true) continue;
      const v = this.ctx.req.headers[name];
      if (v === undefined) continue;
      if (typeof v === 'string') headers.push(name, v);
      else for (const one of v) headers.push(name, one);
    }
    this.plan.gatewayHeaders(this.ctx, headers);
    const set = this.ctx.setRequestHeaders;
    if (set !== null) for (let j = 0; j < set.length; j++) headers.push(set[j]!);
    let missing: string | null = typeof path === 'string' ? null : path.missing;
    for (const [name, t] of call.query) {
      const v = render(t, this.ctx, this.byName, encode);
      if (typeof v !== 'string') missing ??= v.missing;
      else if (typeof path === 'string') path += `${path.includes('?') ? '&' : '?'}${encode(name)}=${v}`;
    }
    for (const [name, t] of call.headers) {
      const v = render(t, this.ctx, this.byName, headerSafe);
      if (typeof v !== 'string') missing ??= v.missing;
      else headers.push(name, v);
    }
    if (missing !== null || typeof path !== 'string') {
      return this.settle(i, {
        ok: false,
        failure: { cause: 'TP_AGGREGATE_CALL_FAILED', detail: `no value for ${missing}` },
      });
    }
    const pooled = new PooledCall(this.ctx, call.route, path, headers, (result) => {
      this.running.delete(i);
      this.settle(i, result);
    });
    this.running.set(i, pooled);
    pooled.start();
  }

  private settle(i: number, result: CallResult): void {
    if (this.over) return;
    const call = this.plan.calls[i]!;
    this.settled++;
    if (result.ok) {
      this.states[i] = 'ok';
      this.answers[i] = result.answer;
      this.byName.set(call.name, result.answer);
    } else {
      this.states[i] = 'failed';
      if (!call.optional) return this.fail(call.name, result.failure);
      this.partial = true;
    }
    this.advance();
  }

  private fail(call: string, failure: CallFailure): void {
    const code = failure.cause === 'TP_UPSTREAM_TIMEOUT' ? 'TP_AGGREGATE_CALL_TIMEOUT' : 'TP_AGGREGATE_CALL_FAILED';
    this.end({ ok: false, call, code, cause: failure.cause, detail: `call "${call}": ${failure.detail}` });
  }

  private end(outcome: Outcome): void {
    if (this.over) return;
    this.over = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ctx.res.off('close', this.onClientClose);
    for (const call of this.running.values()) call.abort();
    this.running.clear();
    this.finish(outcome);
  }

  /** The whole timeout: calls still running or waiting fail as timed out (optional ones become null). */
  private readonly onTimeout = (): void => {
    this.timer = null;
    const timedOut: CallFailure = { cause: 'TP_UPSTREAM_TIMEOUT', detail: "the aggregate's timeout passed first" };
    const calls = this.plan.calls;
    for (let i = 0; i < calls.length && !this.over; i++) {
      const s = this.states[i];
      if (s !== 'running' && s !== 'waiting') continue;
      this.running.get(i)?.abort();
      this.running.delete(i);
      this.states[i] = 'failed';
      this.settled++;
      if (!calls[i]!.optional) return this.fail(calls[i]!.name, timedOut);
      this.partial = true;
    }
    this.advance();
  };

  private readonly onClientClose = (): void => {
    if (this.over) return;
    this.over = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const call of this.running.values()) call.abort();
    this.running.clear();
    if (this.ctx.status === 0) this.ctx.status = 499; // NGINX's "client closed request", for the log only
  };
}
