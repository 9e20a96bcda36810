// What a plugin is: a name, a config schema, the phase its request hook runs in, and a factory that
// precomputes everything at load so the hooks only do per-request work (as Hono's middleware factories do).
import type { CachePurges } from '../cache/purge-fanout.ts';
import type { z } from 'zod';
import type { Redis } from 'ioredis';
import type { ConsumerDirectory } from '../auth/consumers.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';

/** Request phases, in the fixed order they run. The terminal (forward, respond, redirect) runs after `cache`. */
export const PHASES = ['access', 'authenticate', 'authorize', 'limit', 'transform-request', 'cache'] as const;
export type Phase = (typeof PHASES)[number];

export type RequestHookResult = Reply | undefined | void;
export type RequestHook = (ctx: RequestContext) => RequestHookResult | Promise<RequestHookResult>;
/** Runs on the response head (from the upstream or a local reply) before it is written. */
export type ResponseHook = (ctx: RequestContext, head: ResponseHead) => void;

export interface PluginHooks {
  readonly request?: RequestHook;
  readonly response?: ResponseHook;
}

export interface PluginEnv {
  /** Folder of the config file, to resolve relative paths. */
  readonly configDir: string;
  readonly warn: (message: string) => void;
  /** The top-level `consumers:`, compiled for lookups. */
  readonly consumers: ConsumerDirectory;
  /** The shared Redis client of `stores.redis` (one per process, created on first use); undefined when not configured. */
  readonly redis: () => Redis | undefined;
  /** Instance-wide memory counters (local in one process, the primary's in a worker). */
  readonly memoryRates: RateStore;
  readonly memoryConcurrency: ConcurrencyStore;
  /** Logs once per key and interval (store outages: a line per interval, not per request). */
  readonly logThrottled: (key: string, message: string, fields?: object) => void;
  /** An object kept across reloads while the config keeps asking for its key (a route's memory cache). */
  readonly keep: <T>(key: string, make: () => T) => T;
  /** Memory caches by route, and the way to purge them in every worker of the instance. */
  readonly cachePurges: CachePurges;
  /** The route being compiled (a plugin's shared state is per route). */
  readonly routeName: string;
}

export interface PluginDefinition<C = unknown> {
  readonly name: string;
  readonly phase: Phase;
  readonly schema: z.ZodType<C>;
  readonly description: string;
  create(config: C, env: PluginEnv): PluginHooks;
}

/** Keeps the config type attached to the factory while storing plugins in one registry. */
export function definePlugin<C>(definition: PluginDefinition<C>): PluginDefinition<C> {
  return definition;
}
