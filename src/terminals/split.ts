// split: sends each request to one of several upstreams (sides), each through its own pool, as the upstream
// terminal does. The choice, in order: the first entry whose `match` fits (x-canary: always → the canary);
// then a valid `splitSticky` cookie naming a side that still exists (whatever its weight now, 0 included, as
// HAProxy keeps persistent sessions on a weight-0 server); then the weights, by smooth weighted round robin
// (deterministic: the shares hold exactly over each cycle of sum(weights) picks, per worker). A client the
// weights placed gets the cookie; one a `match` placed does not (the match decides again next time).
import type { CheckProblem } from '../config/problems.ts';
import type { SplitConfig } from '../config/split-schema.ts';
import { cookieValue } from '../http/cookies.ts';
import { appendSetCookie } from '../http/header-list.ts';
import type { RequestContext, UpstreamOverride } from '../request-context.ts';
import { compilePredicates, headersAndQueryPass, type Matcher, type Predicates } from '../routing/predicates.ts';
import type { BalancedTarget } from '../upstream/balancers/balancer.ts';
import { WeightedRoundRobinBalancer } from '../upstream/balancers/weighted-round-robin.ts';
import { StickyCookie, stickyToken } from '../upstream/sticky.ts';
import { defineTerminal, type Terminal } from './terminal.ts';
import { upstreamTerminal } from './upstream.ts';

interface Side extends BalancedTarget {
  readonly name: string;
  readonly terminal: Terminal;
  /** Adds this side's Set-Cookie to the upstream's answer (made once here, not per request); null: not sticky. */
  readonly pin: UpstreamOverride | null;
}

interface MatchedSide {
  readonly side: Side;
  readonly predicates: Predicates;
  readonly cookieNames: readonly string[];
  readonly cookieMatchers: readonly Matcher[];
}

/** The cookie's token for a side: a hash of the upstream's name, so every instance and every reload agrees. */
export function splitToken(upstream: string): string {
  return stickyToken(`split|${upstream}`);
}

export const splitTerminal = defineTerminal<SplitConfig>({
  key: 'split',
  check(config, env) {
    const problems: CheckProblem[] = [];
    config.forEach((e, i) => {
      const why = env.upstreamProblem(e.upstream);
      if (why !== undefined)
        problems.push({ path: [i, 'upstream'], code: 'TP_CONFIG_BAD_REFERENCE', message: `${env.who} split ${why}` });
    });
    return problems;
  },
  compile(config, env) {
    const stickyConfig = env.route.splitSticky;
    const sticky = stickyConfig === undefined ? null : new StickyCookie(stickyConfig);
    const sides: Side[] = config.map((e) => {
      const token = splitToken(e.upstream);
      const cookie = sticky === null ? null : sticky.serialize(token);
      return {
        name: e.upstream,
        key: token,
        weight: e.weight ?? 0,
        active: 0,
        terminal: upstreamTerminal.compile(e.upstream, env),
        pin:
          cookie === null
            ? null
            : (_status, head) => {
                if (head !== null) appendSetCookie(head.headers, cookie);
                return undefined;
              },
      };
    });
    const byToken = new Map(sides.map((s) => [s.key, s]));
    const matched: MatchedSide[] = [];
    config.forEach((e, i) => {
      if (e.match === undefined) return;
      const cookies = Object.entries(e.match.cookie ?? {});
      matched.push({
        side: sides[i]!,
        predicates: compilePredicates({ headers: e.match.headers, query: e.match.query }),
        cookieNames: cookies.map(([name]) => name),
        cookieMatchers: cookies.map(([, m]) => (typeof m === 'string' ? m : new RegExp(m.regex))),
      });
    });
    const weighted = sides.filter((s) => s.weight > 0);
    const balancer = new WeightedRoundRobinBalancer<Side>();
    balancer.update(weighted);
    // A cache's background refresh (made before the side is chosen) goes to the side with the largest weight.
    const heaviest = weighted.reduce((a, b) => (b.weight > a.weight ? b : a));

    /** The side a match or a valid cookie names, or undefined (the weights decide). */
    function placed(ctx: RequestContext): Side | undefined {
      for (let i = 0; i < matched.length; i++) if (entryMatches(matched[i]!, ctx)) return matched[i]!.side;
      if (sticky === null) return undefined;
      const token = sticky.read(ctx.req.headers.cookie);
      return token === undefined ? undefined : byToken.get(token);
    }

    function choose(ctx: RequestContext): Side {
      const side = placed(ctx);
      if (side !== undefined) return side;
      const picked = balancer.pick('')!;
      if (picked.pin !== null) ctx.onUpstream(picked.pin);
      return picked;
    }

    const terminal: Terminal = {
      run(ctx) {
        const side = choose(ctx);
        ctx.upstreamName = side.name;
        ctx.forwardRoute = side.terminal.forward;
        side.terminal.run(ctx);
      },
      upgrade(ctx, socket, head, opened) {
        const side = choose(ctx);
        ctx.upstreamName = side.name;
        ctx.forwardRoute = side.terminal.forward;
        side.terminal.upgrade!(ctx, socket, head, opened);
      },
      upstreamName: '',
      forward: heaviest.terminal.forward,
      explain(ctx) {
        for (const m of matched)
          if (entryMatches(m, ctx))
            return { upstream: m.side.name, summary: `split: the ${m.side.name} entry's match fits` };
        const token = sticky === null ? undefined : sticky.read(ctx.req.headers.cookie);
        const pinned = token === undefined ? undefined : byToken.get(token);
        if (pinned !== undefined)
          return {
            upstream: pinned.name,
            summary: `split: the ${sticky!.name} cookie keeps the client on ${pinned.name}`,
          };
        const peek = balancer.peek('');
        return {
          upstream: peek.target!.name,
          summary: `split by weight, ${sides.map((s) => `${s.name} ${s.weight}`).join(', ')}: ${peek.reason}`,
        };
      },
    };
    return terminal;
  },
});

function entryMatches(m: MatchedSide, ctx: RequestContext): boolean {
  const headers = ctx.req.headers;
  if (!headersAndQueryPass(m.predicates, headers, ctx.query)) return false;
  const names = m.cookieNames;
  if (names.length === 0) return true;
  const header = headers.cookie;
  if (header === undefined) return false;
  for (let i = 0; i < names.length; i++) {
    const value = cookieValue(header, names[i]!);
    const want = m.cookieMatchers[i]!;
    if (value === undefined || (typeof want === 'string' ? value !== want : !want.test(value))) return false;
  }
  return true;
}
