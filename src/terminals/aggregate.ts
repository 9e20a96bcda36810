// aggregate: calls several upstreams (in parallel, or after the calls whose answers they use) and answers their
// JSON merged, keyed by call name or at the top level. The route's plugins run around the whole: authenticated
// once, the merged answer cached, compressed. The calls themselves live in src/aggregate/.
import { Aggregation, type AggregatePlan, type CallPlan, type Outcome } from '../aggregate/aggregation.ts';
import type { CallAnswer } from '../aggregate/call.ts';
import type { AggregateConfig } from '../config/aggregate-schema.ts';
import { parseTemplate, type Template } from '../config/aggregate-template.ts';
import type { CheckProblem } from '../config/problems.ts';
import type { Chain } from '../pipeline/chain.ts';
import { problemReply } from '../pipeline/problem.ts';
import { sendReply } from '../pipeline/reply.ts';
import { pushGatewayHeaders } from '../proxy/headers.ts';
import { sendProduced } from '../proxy/produced-body.ts';
import { compileRetryPolicy } from '../proxy/retry-policy.ts';
import type { RequestContext } from '../request-context.ts';
import { defineTerminal } from './terminal.ts';

export const PARTIAL_HEADER = 'x-turnpike-partial';

export const aggregateTerminal = defineTerminal<AggregateConfig>({
  key: 'aggregate',
  check(config, env) {
    const problems: CheckProblem[] = [];
    const defined = [...env.upstreams.keys()].join(', ') || 'none';
    config.calls.forEach((c, i) => {
      const who = `${env.who} call "${c.name}"`;
      if (!env.upstreams.has(c.upstream))
        problems.push({
          path: ['calls', i, 'upstream'],
          code: 'TP_CONFIG_BAD_REFERENCE',
          message: `${who} names upstream "${c.upstream}", which is not defined under upstreams (defined: ${defined})`,
        });
      else if (env.upstreams.get(c.upstream) !== undefined && env.upstreams.get(c.upstream) !== 'http')
        problems.push({
          path: ['calls', i, 'upstream'],
          code: 'TP_CONFIG_BAD_REFERENCE',
          message: `${who} needs an upstream with http:// or https:// targets, but "${c.upstream}" has ${env.upstreams.get(c.upstream)}:// targets`,
        });
    });
    return problems;
  },
  compile(config, env) {
    const index = new Map(config.calls.map((c, i) => [c.name, i]));
    const whole = config.timeout ?? env.requestTimeout;
    const calls: CallPlan[] = config.calls.map((c) => {
      const pool = env.upstreams.get(c.upstream)!;
      const t = pool.config.timeouts;
      const own = c.timeout ?? 0;
      return {
        name: c.name,
        upstream: c.upstream,
        route: {
          pool,
          method: c.method,
          timeout: own,
          headersTimeout: Math.min(t.response, own > 0 ? own : Infinity, whole > 0 ? whole : Infinity),
          bodyTimeout: t.idle,
          retry: compileRetryPolicy(pool.config),
          maxBody: env.maxBodySize,
          preserveHost: pool.config.preserveHost,
        },
        path: parsed(c.path),
        query: Object.entries(c.query).map(([k, v]) => [k, parsed(v)] as const),
        headers: Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), parsed(v)] as const),
        forwardHeaders: c.forwardHeaders,
        optional: c.optional,
        after: c.after.map((d) => index.get(d)!),
      };
    });
    const policy = {
      requestIdHeader: env.requestIdHeader,
      consumerNameHeader: env.consumerHeaders.name,
      consumerGroupsHeader: env.consumerHeaders.groups,
    };
    const plan: AggregatePlan = {
      calls,
      timeout: whole,
      gatewayHeaders: (ctx, out) => pushGatewayHeaders(ctx, policy, out),
    };
    const merge = config.merge;
    const chain = env.chain;
    return {
      run(ctx) {
        new Aggregation(ctx, plan, (outcome) => answer(ctx, chain, plan, merge, outcome)).start();
      },
      upstreamName: '',
      forward: null,
    };
  },
});

function parsed(text: string): Template {
  const t = parseTemplate(text);
  if (typeof t === 'string') throw new Error(`aggregate template refused after validation: ${t}`);
  return t;
}

function answer(ctx: RequestContext, chain: Chain, plan: AggregatePlan, merge: string, outcome: Outcome): void {
  if (!outcome.ok) {
    // A stored answer may stand in, as for an upstream that failed (the cache's stale-if-error).
    const stored = ctx.overrideUpstream(0, null);
    ctx.errorCode = outcome.code;
    if (stored !== undefined) return sendReply(ctx, chain, stored);
    const reply = problemReply(outcome.code, outcome.detail, ctx.requestId);
    const body = JSON.stringify({ ...JSON.parse(reply.body as string), call: outcome.call, cause: outcome.cause });
    return sendReply(ctx, chain, { ...reply, body });
  }
  const merged = merge === 'root' ? mergeRoot(outcome.answers) : keyed(plan, outcome.answers);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (outcome.partial) {
    headers[PARTIAL_HEADER] = 'true';
    // An answer missing a part is not kept by caches: the next request may get it whole.
    headers['cache-control'] = 'no-store';
  }
  sendProduced(ctx, chain, 200, headers, Buffer.from(JSON.stringify(merged)));
}

function keyed(plan: AggregatePlan, answers: readonly (CallAnswer | null)[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  plan.calls.forEach((c, i) => (out[c.name] = answers[i]?.body ?? null));
  return out;
}

/** The answers' objects merged at the top level in call order (a later call's key wins); other answers are left out. */
function mergeRoot(answers: readonly (CallAnswer | null)[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of answers) {
    const body = a?.body;
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) Object.assign(out, body);
  }
  return out;
}
