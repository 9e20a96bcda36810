// Compiles a route's plugins (global first, then the route's) into fixed-phase hook arrays, and runs them.
import type { PluginEntry } from '../config/schema.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';
import { problemReply } from '../proxy/problem.ts';
import { PLUGINS } from './registry.ts';
import { PHASES, type PluginEnv, type RequestHook, type RequestHookResult, type ResponseHook } from './types.ts';

export interface Chain {
  /** Request hooks in run order; `requestPositions[i]` is the plugin position of `request[i]`. */
  readonly request: readonly RequestHook[];
  readonly requestPositions: readonly number[];
  readonly response: readonly ResponseHook[];
  readonly responsePositions: readonly number[];
  readonly pluginNames: readonly string[];
}

export const EMPTY_CHAIN: Chain = { request: [], requestPositions: [], response: [], responsePositions: [], pluginNames: [] };

/** Position used for "the terminal ran": every response hook runs. */
export const TERMINAL_REACHED = Number.MAX_SAFE_INTEGER;

export function compileChain(global: readonly PluginEntry[], route: readonly PluginEntry[], env: PluginEnv): Chain {
  const all = [...global, ...route];
  if (all.length === 0) return EMPTY_CHAIN;
  // Stable sort by phase: within a phase, global before route and list order are kept.
  const ordered = all
    .map((entry, order) => ({ entry, order, def: PLUGINS.get(entry.name)! }))
    .sort((a, b) => PHASES.indexOf(a.def.phase) - PHASES.indexOf(b.def.phase) || a.order - b.order);
  const request: RequestHook[] = [];
  const requestPositions: number[] = [];
  const response: ResponseHook[] = [];
  const responsePositions: number[] = [];
  const lastAuthenticate = ordered.findLastIndex((o) => o.def.phase === 'authenticate');
  ordered.forEach(({ entry, def }, position) => {
    const hooks = def.create(entry.config, env);
    if (hooks.request) {
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
      response.push(hooks.response);
      responsePositions.push(position);
    }
  });
  return { request, requestPositions, response, responsePositions, pluginNames: ordered.map((o) => o.entry.name) };
}

function authenticationGate(ctx: RequestContext): Reply | undefined {
  if (ctx.identity !== null) return undefined;
  const challenges = ctx.authChallenges ?? [];
  return problemReply('TP_UNAUTHENTICATED', undefined, ctx.requestId, challenges.length > 0 ? { 'www-authenticate': challenges } : undefined);
}

/**
 * Runs the request hooks. Stays synchronous while hooks are, so a route of sync plugins costs no promise.
 * Returns a Reply when a plugin answered the request itself.
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

async function continueAsync(chain: Chain, ctx: RequestContext, pending: Promise<RequestHookResult>, index: number): Promise<Reply | undefined> {
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

/** Runs response hooks of the plugins that ran (all of them once the terminal ran). */
export function runResponseHooks(chain: Chain, ctx: RequestContext, head: ResponseHead): void {
  const hooks = chain.response;
  for (let i = 0; i < hooks.length; i++) {
    if (chain.responsePositions[i]! > ctx.reached) break;
    hooks[i]!(ctx, head);
  }
}
