// `turnpike explain`: what the gateway would do with one request, said without doing it. The same snapshot the
// listener serves from is asked: the router picks the route (the others say why they did not match), each plugin's
// `explain` hook gives its decision in phase order, the terminal is named, and the upstream pool says which target
// it would pick. Identity providers may be asked (JWKS, introspection); no upstream is, no rate-limit allowance or
// cache entry is consumed, no balancer moves.
import { ROUTE_TERMINALS, type RouteConfig } from '../config/schema.ts';
import { REQUEST_PHASES, type Phase } from '../pipeline/phases.ts';
import type { Chain } from '../pipeline/chain.ts';
import type { PluginExplanation } from '../plugins/types.ts';
import type { RequestContext } from '../request-context.ts';
import { whyNot, type RouteMiss } from '../routing/explain-route.ts';
import type { CompiledRoute, Snapshot } from '../runtime/snapshot.ts';
import { chooseListener, explainedContext, parseUrl, type ExplainInput } from './request.ts';
import { explainUpstream, type UpstreamExplanation } from './upstream.ts';

export type { ExplainInput } from './request.ts';

export interface RouteVerdict {
  readonly name: string;
  readonly index: number;
  readonly matched: boolean;
  /** Why it did not match; empty for the route that did, and for one that matches but another one wins. */
  readonly misses: readonly RouteMiss[];
  /** Set when it matches too but the route that won comes first in the router's order. */
  readonly outranked?: string;
}

export interface PluginStep {
  readonly name: string;
  readonly phase: Phase | 'authenticate-gate';
  readonly global: boolean;
  readonly decision: PluginExplanation['decision'] | 'not-reached' | 'unexplained' | 'error';
  readonly status?: number;
  readonly code?: string;
  readonly summary: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface TerminalExplanation {
  readonly kind: string;
  /** False when a plugin answers first. */
  readonly reached: boolean;
  readonly upstream?: string;
  readonly status?: number;
  readonly location?: string;
  /** What a terminal with its own `explain` hook says it would do (a split's side and why). */
  readonly summary?: string;
  /** An aggregate's calls, in config order (placeholders as written). */
  readonly calls?: readonly {
    readonly name: string;
    readonly upstream: string;
    readonly method: string;
    readonly path: string;
    readonly after: readonly string[];
    readonly optional: boolean;
  }[];
  /** The route's `fallback`: its status, and the upstream statuses it answers too (besides failures). */
  readonly fallback?: { readonly status: number; readonly onStatus: readonly number[] };
}

export interface Explanation {
  readonly request: {
    readonly method: string;
    readonly url: string;
    readonly host: string;
    readonly path: string;
    readonly query: string;
    readonly clientIp: string;
    readonly scheme: string;
  };
  readonly listener: {
    readonly name: string;
    readonly protocol: string;
    readonly port: number;
    readonly chosenBy: string;
  };
  readonly route: { readonly name: string; readonly index: number; readonly params: Record<string, string> } | null;
  readonly routes: readonly RouteVerdict[];
  readonly plugins: readonly PluginStep[];
  readonly terminal: TerminalExplanation | null;
  readonly upstream: UpstreamExplanation | null;
  /** What the client would get: a status when the gateway answers itself (null when the upstream does), and who. */
  readonly outcome: {
    readonly status: number | null;
    readonly code?: string;
    readonly by: string;
    readonly summary: string;
  };
  /** What explaining could not see (a client certificate, health never probed). */
  readonly notes: readonly string[];
}

export interface ExplainOptions {
  /** The port a listener is bound to (a running gateway's port 0 listeners), by listener name. */
  readonly boundPort?: (listener: string) => number | undefined;
  /** Said in `notes` (the CLI: health is not probed, stores are fresh in memory). */
  readonly notes?: readonly string[];
}

const IS_REQUEST_PHASE = new Set<string>(REQUEST_PHASES);

async function explainChain(
  chain: Chain,
  ctx: RequestContext,
): Promise<{ steps: PluginStep[]; answer: PluginStep | null }> {
  const steps: PluginStep[] = [];
  let answer: PluginStep | null = null;
  const lastAuthenticate = chain.plugins.findLastIndex((p) => p.phase === 'authenticate');
  for (let i = 0; i < chain.plugins.length; i++) {
    const p = chain.plugins[i]!;
    const base = { name: p.name, phase: p.phase, global: p.global };
    if (answer !== null && IS_REQUEST_PHASE.has(p.phase)) {
      steps.push({ ...base, decision: 'not-reached', summary: `not reached: ${answer.name} answers first` });
    } else if (p.explain === null) {
      steps.push({
        ...base,
        decision: 'unexplained',
        summary: 'no explanation (this plugin cannot say without running)',
      });
    } else {
      let step: PluginStep;
      try {
        step = { ...base, ...(await p.explain(ctx)) };
      } catch (err) {
        step = { ...base, decision: 'error', summary: `explaining failed: ${(err as Error).message ?? String(err)}` };
      }
      steps.push(step);
      if (step.decision === 'answer' && IS_REQUEST_PHASE.has(p.phase)) answer = step;
    }
    // The gate after the last authentication plugin (pipeline/chain.ts): none accepted → 401.
    if (i === lastAuthenticate && answer === null && ctx.identity === null) {
      answer = {
        name: 'authentication',
        phase: 'authenticate-gate',
        global: false,
        decision: 'answer',
        status: 401,
        code: 'TP_UNAUTHENTICATED',
        summary: 'no authentication plugin accepted the request: 401 TP_UNAUTHENTICATED',
      };
      steps.push(answer);
    }
  }
  return { steps, answer };
}

function terminalOf(route: RouteConfig): TerminalExplanation {
  const base = terminalKindOf(route);
  const f = route.fallback;
  return f === undefined ? base : { ...base, fallback: { status: f.status, onStatus: f.onStatus } };
}

function terminalKindOf(route: RouteConfig): TerminalExplanation {
  const kind = Object.keys(ROUTE_TERMINALS).find((k) => route[k as keyof typeof ROUTE_TERMINALS] !== undefined)!;
  if (route.upstream !== undefined) return { kind, reached: true, upstream: route.upstream };
  if (route.bridge !== undefined) return { kind, reached: true, upstream: route.bridge.upstream };
  if (route.grpcTranscode !== undefined) return { kind, reached: true, upstream: route.grpcTranscode.upstream };
  if (route.respond !== undefined) return { kind, reached: true, status: route.respond.status };
  if (route.redirect !== undefined)
    return { kind, reached: true, status: route.redirect.status, location: route.redirect.to };
  if (route.aggregate !== undefined) {
    const calls = route.aggregate.calls.map((c) => ({
      name: c.name,
      upstream: c.upstream,
      method: c.method,
      path: c.path,
      after: c.after,
      optional: c.optional,
    }));
    return { kind, reached: true, calls };
  }
  return { kind, reached: true };
}

function routeVerdicts(snapshot: Snapshot, ctx: RequestContext, winner: CompiledRoute | null): RouteVerdict[] {
  const req = {
    method: ctx.req.method!,
    host: ctx.host,
    path: ctx.path,
    headers: ctx.req.headers,
    query: ctx.query,
    version: ctx.apiVersion === '' ? undefined : ctx.apiVersion,
  };
  const caseSensitive = snapshot.config.limits.caseSensitivePaths;
  return snapshot.routes.map((r) => {
    const misses = whyNot(snapshot.config.routes[r.index]!.match, req, caseSensitive);
    const verdict = { name: r.name, index: r.index, matched: r === winner, misses };
    return r !== winner && misses.length === 0 && winner !== null ? { ...verdict, outranked: winner.name } : verdict;
  });
}

export async function explain(
  snapshot: Snapshot,
  input: ExplainInput,
  options: ExplainOptions = {},
): Promise<Explanation> {
  const url = parseUrl(input.url);
  const { listener, chosenBy } = chooseListener(snapshot, url, input.listener, options.boundPort);
  const { ctx, refused } = explainedContext(input, url, listener);
  const notes = [...(options.notes ?? [])];
  const request = {
    method: ctx.req.method!,
    url: input.url,
    host: ctx.host,
    path: ctx.path,
    query: ctx.query,
    clientIp: ctx.clientIp,
    scheme: ctx.scheme,
  };
  // A credential in the query is shown as the access log shows it (key-auth and jwt set ctx.logUrl).
  const shown = () => {
    if (ctx.logUrl === null) return request;
    const q = ctx.logUrl.indexOf('?');
    return { ...request, url: url.origin + ctx.logUrl, query: q === -1 ? '' : ctx.logUrl.slice(q) };
  };
  const base = {
    listener: {
      name: listener.config.name,
      protocol: listener.scheme,
      port: options.boundPort?.(listener.config.name) ?? listener.config.port,
      chosenBy,
    },
  };
  const none = { route: null, routes: [], plugins: [], terminal: null, upstream: null };
  if (refused !== null) return { request, ...base, ...none, outcome: { ...refused, by: 'listener' }, notes };

  const req = ctx.req;
  const match = snapshot.router.find(req.method!, ctx.host, ctx.path, req.headers, ctx.query);
  const winner = match?.value ?? null;
  if (match !== undefined && 'version' in match && match.version !== undefined) ctx.apiVersion = match.version;
  // A version read from a /v{version} prefix: the winner saw the path without it.
  if (match !== undefined && 'path' in match && match.path !== undefined) ctx.path = match.path;
  const routes = routeVerdicts(snapshot, ctx, winner);
  if (match === undefined || match.value === undefined) {
    // No route: the global plugins still run (a global authentication answers 401 before the 404).
    const { steps, answer } = await explainChain(snapshot.globalChain, ctx);
    const outcome =
      answer !== null
        ? {
            status: answer.status ?? null,
            ...(answer.code ? { code: answer.code } : {}),
            by: answer.name,
            summary: answer.summary,
          }
        : match === undefined
          ? {
              status: 404,
              code: 'TP_ROUTE_NOT_FOUND',
              by: 'router',
              summary: 'no route matches: 404 TP_ROUTE_NOT_FOUND',
            }
          : 'versions' in match
            ? {
                status: 404,
                code: 'TP_VERSION_NOT_FOUND',
                by: 'router',
                summary: `no route takes this path in version ${match.version ?? '(none)'}; versions: ${match.versions.join(', ')}`,
              }
            : {
                status: 405,
                code: 'TP_METHOD_NOT_ALLOWED',
                by: 'router',
                summary: `the path's most specific route does not take ${req.method}: 405, Allow: ${match.allow}`,
              };
    return { request: shown(), ...base, ...none, routes, plugins: steps, outcome, notes };
  }

  const route = match.value;
  ctx.params = match.params;
  ctx.routeName = route.name;
  ctx.upstreamName = route.terminal.upstreamName;
  ctx.forwardRoute = route.terminal.forward;
  if (route.requireClientCert)
    notes.push('the route requires a verified client certificate (403 without one); explained as if one was presented');
  const { steps, answer } = await explainChain(route.chain, ctx);
  const own = route.terminal.explain?.(ctx);
  const terminal = { ...terminalOf(snapshot.config.routes[route.index]!), ...own, reached: answer === null };
  const pool = terminal.upstream === undefined ? undefined : snapshot.upstreams.get(terminal.upstream);
  const upstream = pool === undefined ? null : explainUpstream(pool, ctx);
  return {
    request: shown(),
    ...base,
    route: { name: route.name, index: route.index, params: { ...match.params } },
    routes,
    plugins: steps,
    terminal,
    upstream,
    outcome: outcomeOf(answer, terminal, upstream),
    notes,
  };
}

function outcomeOf(
  answer: PluginStep | null,
  terminal: TerminalExplanation,
  upstream: UpstreamExplanation | null,
): Explanation['outcome'] {
  if (answer !== null)
    return {
      status: answer.status ?? null,
      ...(answer.code ? { code: answer.code } : {}),
      by: answer.name,
      summary: answer.summary,
    };
  if (terminal.kind === 'respond')
    return { status: terminal.status!, by: 'respond', summary: `answered by the route itself: ${terminal.status}` };
  if (terminal.kind === 'redirect')
    return {
      status: terminal.status!,
      by: 'redirect',
      summary: `redirected to ${terminal.location} (${terminal.status})`,
    };
  if (terminal.calls !== undefined)
    return {
      status: null,
      by: 'aggregate',
      summary: `merges the answers of ${terminal.calls.length} calls (${terminal.calls.map((c) => `${c.name} to ${c.upstream}`).join(', ')})`,
    };
  if (upstream === null)
    return { status: null, by: terminal.kind, summary: terminal.summary ?? `handled by the ${terminal.kind} terminal` };
  // The route's fallback answers in the upstream's place (a cache's stale copy would come first).
  const fallback = terminal.fallback;
  const failed = (code: string, why: string): Explanation['outcome'] =>
    fallback === undefined
      ? { status: 503, code, by: 'upstream', summary: `${why}: 503` }
      : { status: fallback.status, code, by: 'fallback', summary: `${why}: the route's fallback ${fallback.status}` };
  if (upstream.breaker === 'open') return failed('TP_CIRCUIT_OPEN', `the circuit breaker of ${upstream.name} is open`);
  if (!upstream.targets.some((t) => t.inRotation))
    return failed('TP_NO_HEALTHY_TARGET', `no target of ${upstream.name} is usable`);
  const target = upstream.pick.target ?? 'a target drawn at random';
  return { status: null, by: 'upstream', summary: `forwarded to upstream ${upstream.name}, target ${target}` };
}
