// A route's plugins (global first, then the route's) compiled into fixed-phase hook arrays, and the runners.
// Request side: the request phases in order, list order within a phase. Response side: the response phases
// (transform-response, compress) in list order, then the response hooks of the request-phase plugins that ran,
// in reverse request order (Envoy's encoder order: CORS and RateLimit headers reach a 401 or a 429); then log.
import type { PluginEntry } from '../config/schema.ts';
import type {
  ExplainHook,
  PluginDefinition,
  PluginEnv,
  LogHook,
  RequestHook,
  RequestHookResult,
  ResponseHook,
} from '../plugins/types.ts';
import { PHASES, REQUEST_PHASES, type Phase } from './phases.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';
import type { ErrorPages } from './error-pages.ts';
import { problemReply } from './problem.ts';

export interface Chain {
  /** Request hooks in run order; `requestPositions[i]` is the plugin position of `request[i]`. */
  readonly request: readonly RequestHook[];
  readonly requestPositions: readonly number[];
  /** Hooks of the response phases: run on every response head. */
  readonly responsePhase: readonly ResponseHook[];
  /** Response hooks of request-phase plugins, already in reverse order, with their plugin positions. */
  readonly response: readonly ResponseHook[];
  readonly responsePositions: readonly number[];
  readonly log: readonly LogHook[];
  readonly pluginNames: readonly string[];
  /** Every plugin in run order, for `turnpike explain` (never read on a request's path). */
  readonly plugins: readonly ChainPlugin[];
  /** The header that echoes the request id on every response, or null. */
  readonly echoRequestId: string | null;
  /** Whether any response hook may touch a head (and so a body is worth offering to them). */
  readonly hasResponseHooks: boolean;
  /** The config's `errorPages` (HTML for the gateway's own errors), set by the snapshot; absent or null: none. */
  readonly errorPages?: ErrorPages | null;
  /** The plugins' `close` hooks (run by Snapshot.closeTerminals). */
  readonly close: readonly (() => void)[];
}

export interface ChainPlugin {
  readonly name: string;
  readonly phase: Phase;
  /** Listed under the top-level `plugins:` (they run before the route's own within a phase). */
  readonly global: boolean;
  readonly explain: ExplainHook | null;
}

/** Position used for "the terminal ran": every response hook runs. */
export const TERMINAL_REACHED = Number.MAX_SAFE_INTEGER;

const isRequestPhase = new Set<string>(REQUEST_PHASES);

export function emptyChain(echoRequestId: string | null): Chain {
  return {
    request: [],
    requestPositions: [],
    responsePhase: [],
    response: [],
    responsePositions: [],
    log: [],
    pluginNames: [],
    plugins: [],
    echoRequestId,
    hasResponseHooks: false,
    close: [],
  };
}

export function compileChain(
  plugins: ReadonlyMap<string, PluginDefinition<any>>,
  global: readonly PluginEntry[],
  route: readonly PluginEntry[],
  env: PluginEnv,
  echoRequestId: string | null,
): Chain {
  const all = [...global, ...route];
  if (all.length === 0) return emptyChain(echoRequestId);
  // Stable sort by phase: within a phase, global before route and list order are kept.
  const ordered = all
    .map((entry, order) => ({ entry, order, def: plugins.get(entry.name)! }))
    .sort((a, b) => PHASES.indexOf(a.def.phase) - PHASES.indexOf(b.def.phase) || a.order - b.order);
  const request: RequestHook[] = [];
  const requestPositions: number[] = [];
  // Response-phase hooks, sorted below by phase then list order (a request-phase plugin may hook one: responsePhase).
  const responsePhaseHooks: { hook: ResponseHook; phase: number; order: number }[] = [];
  const response: ResponseHook[] = [];
  const responsePositions: number[] = [];
  const log: LogHook[] = [];
  const explained: ChainPlugin[] = [];
  const close: (() => void)[] = [];
  const lastAuthenticate = ordered.findLastIndex((o) => o.def.phase === 'authenticate');
  ordered.forEach(({ entry, def, order }, position) => {
    const hooks = def.create(entry.config, env);
    explained.push({ name: def.name, phase: def.phase, global: order < global.length, explain: hooks.explain ?? null });
    const inRequestPhase = isRequestPhase.has(def.phase);
    if (hooks.request) {
      if (!inRequestPhase)
        throw new Error(`plugin "${def.name}" runs in the ${def.phase} phase and cannot have a request hook`);
      request.push(hooks.request);
      requestPositions.push(position);
    }
    // Several authentication plugins on a route: any one accepting is enough, so each one that refuses only
    // leaves its challenge, and this gate after the last of them answers 401 when none accepted.
    if (position === lastAuthenticate) {
      request.push(authenticationGate);
      requestPositions.push(position);
    }
    if (hooks.response) {
      if (def.responsePhase !== undefined) {
        responsePhaseHooks.push({ hook: hooks.response, phase: PHASES.indexOf(def.responsePhase), order });
      } else if (inRequestPhase) {
        response.unshift(hooks.response);
        responsePositions.unshift(position);
      } else {
        responsePhaseHooks.push({ hook: hooks.response, phase: PHASES.indexOf(def.phase), order });
      }
    }
    if (hooks.log) log.push(hooks.log);
    if (hooks.close) close.push(hooks.close);
  });
  const responsePhase = responsePhaseHooks.sort((a, b) => a.phase - b.phase || a.order - b.order).map((h) => h.hook);
  return {
    request,
    requestPositions,
    responsePhase,
    response,
    responsePositions,
    log,
    pluginNames: ordered.map((o) => o.entry.name),
    plugins: explained,
    echoRequestId,
    hasResponseHooks: responsePhase.length > 0 || response.length > 0,
    close,
  };
}

function authenticationGate(ctx: RequestContext): Reply | undefined {
  if (ctx.identity !== null) return undefined;
  const challenges = ctx.authChallenges ?? [];
  return problemReply(
    'TP_UNAUTHENTICATED',
    undefined,
    ctx.requestId,
    challenges.length > 0 ? { 'www-authenticate': challenges } : undefined,
  );
}

/**
 * Runs the request hooks. Stays synchronous while hooks are, so a route of sync plugins costs no promise.
 * Returns a Reply when a plugin answered the request itself. A hook that throws makes the caller answer 500.
 */
export function runRequestHooks(chain: Chain, ctx: RequestContext): Reply | undefined | Promise<Reply | undefined> {
  const hooks = chain.request;
  for (let i = 0; i < hooks.length; i++) {
    ctx.reached = chain.requestPositions[i]!;
    const result = hooks[i]!(ctx);
    if (result === undefined) continue;
    if (result instanceof Promise) return continueAsync(chain, ctx, result, i);
    return result as Reply;
  }
  ctx.reached = TERMINAL_REACHED;
  return undefined;
}

async function continueAsync(
  chain: Chain,
  ctx: RequestContext,
  pending: Promise<RequestHookResult>,
  index: number,
): Promise<Reply | undefined> {
  const first = await pending;
  if (first) return first;
  const hooks = chain.request;
  for (let i = index + 1; i < hooks.length; i++) {
    ctx.reached = chain.requestPositions[i]!;
    const result = await hooks[i]!(ctx);
    if (result) return result;
  }
  ctx.reached = TERMINAL_REACHED;
  return undefined;
}

/**
 * Finishes a response head before it is written, whatever made it (a terminal, a local reply, a cache hit, an
 * upgrade): the response phases, the response hooks of the plugins that ran (reverse order), the request id.
 */
export function finishHead(chain: Chain, ctx: RequestContext, head: ResponseHead): void {
  const phase = chain.responsePhase;
  for (let i = 0; i < phase.length; i++) phase[i]!(ctx, head);
  const hooks = chain.response;
  const reached = ctx.reached;
  for (let i = 0; i < hooks.length; i++) {
    if (chain.responsePositions[i]! <= reached) hooks[i]!(ctx, head);
  }
  if (chain.echoRequestId !== null) head.headers[chain.echoRequestId] = ctx.requestId;
  ctx.status = head.status;
}

/** The log hooks, once the exchange is over. */
export function runLogHooks(chain: Chain, ctx: RequestContext): void {
  const hooks = chain.log;
  for (let i = 0; i < hooks.length; i++) hooks[i]!(ctx);
}
