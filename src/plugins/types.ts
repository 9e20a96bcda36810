// What a plugin is: a name, a config schema, the phase its hooks run in, and a factory that
// precomputes everything at load so the hooks only do per-request work (as Hono's middleware factories do).
import type { CachePurges } from '../cache/purge-fanout.ts';
import type { CacheStore } from '../cache/store.ts';
import type { Clock } from '../clock.ts';
import type { CheckProblem } from '../config/problems.ts';
import type { z } from 'zod';
import type { RedisClient } from '../stores/redis-client.ts';
import type { ConsumerDirectory } from '../auth/consumers.ts';
import type { ConcurrencyStore, RateStore } from '../limits/shared-store.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';

export {
  PHASES,
  REQUEST_PHASES,
  RESPONSE_PHASES,
  type Phase,
  type RequestPhase,
  type ResponsePhase,
} from '../pipeline/phases.ts';
import type { Phase, ResponsePhase } from '../pipeline/phases.ts';

export type RequestHookResult = Reply | undefined | void;
export type RequestHook = (ctx: RequestContext) => RequestHookResult | Promise<RequestHookResult>;
/** Runs on the response head (from a terminal or a local reply) before it is written. */
export type ResponseHook = (ctx: RequestContext, head: ResponseHead) => void;
/** Runs when the exchange is over (the response finished or the client left). */
export type LogHook = (ctx: RequestContext) => void;

/**
 * What a plugin would do with one request, said without doing it (`turnpike explain`). `refused`: an authentication
 * plugin that did not accept the credential (another one may; the gate after the last answers 401 when none did).
 */
export interface PluginExplanation {
  readonly decision: 'continue' | 'answer' | 'refused';
  /** When it would answer: the status and the error code (TP_*), if any. */
  readonly status?: number;
  readonly code?: string;
  /** One line for people. */
  readonly summary: string;
  /** What the line is made of, for `--json`. Never a secret (a key, a token, a password). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * Explains the request hook's decision for this request without the side effects a request has: no rate-limit
 * allowance consumed, no cache entry counted or filled, no slot taken, no upstream asked. It may call identity
 * providers (JWKS, introspection), and changes the context as the request hook would (identity, path, headers),
 * so the plugins after it explain what they would see.
 */
export type ExplainHook = (ctx: RequestContext) => PluginExplanation | Promise<PluginExplanation>;

export interface PluginHooks {
  /** Request phases only. */
  readonly request?: RequestHook;
  readonly response?: ResponseHook;
  readonly log?: LogHook;
  /** Optional: a plugin without it is listed by `turnpike explain` as "no explanation", never run. */
  readonly explain?: ExplainHook;
  /**
   * Releases what the plugin started on its own (the mirror's copies in flight) once its snapshot is retired and
   * drained, and at stop: the pools' close would otherwise wait for requests no client waits for.
   */
  readonly close?: () => void;
}

export interface PluginEnv {
  /** Folder of the config file, to resolve relative paths. */
  readonly configDir: string;
  readonly warn: (message: string) => void;
  /** The top-level `consumers:`, compiled for lookups. */
  readonly consumers: ConsumerDirectory;
  /** The shared Redis client of `stores.redis` (one per process, created on first use); undefined when not configured. */
  readonly redis: () => RedisClient | undefined;
  /** Instance-wide memory counters (local in one process, the primary's in a worker). */
  readonly memoryRates: RateStore;
  readonly memoryConcurrency: ConcurrencyStore;
  /** Logs once per key and interval (store outages: a line per interval, not per request). */
  readonly logThrottled: (key: string, message: string, fields?: object) => void;
  /** An object kept across reloads while the config keeps asking for its key (a route's memory cache). */
  readonly keep: <T>(key: string, make: () => T) => T;
  /** Memory caches by route, and the way to purge them in every worker of the instance. */
  readonly cachePurges: CachePurges;
  /**
   * This config's caches kept outside the process (Redis), by where their keys live (`RedisCacheStore.place`):
   * the admin API's purge visits each once, however many routes name it.
   */
  readonly sharedCaches: Map<string, CacheStore>;
  /** The runtime's clock (the system clock but in tests): what a plugin's notion of time (cache freshness) reads. */
  readonly clock: Clock;
  /** The route being compiled (a plugin's shared state is per route). */
  readonly routeName: string;
  /** What the route's clients speak (`protocol:`): cors lets browsers read gRPC-Web's headers. */
  readonly routeProtocol: 'http' | 'grpc' | 'grpc-web';
  /** The route's `maxBodySize`: the bound of a body a plugin holds whole. */
  readonly maxBodySize: number;
  /** The snapshot's HTTP upstream pools, by name (a plugin that sends requests of its own: mirror). */
  readonly upstreams: ReadonlyMap<string, UpstreamPool>;
  /** The headers the gateway itself sends upstream (request id, consumer), for such requests. */
  readonly gatewayHeaders: {
    readonly requestIdHeader: string;
    readonly consumerNameHeader: string;
    readonly consumerGroupsHeader: string;
  };
}

/** What a plugin's `check` may look at beyond its own config: the rest of the config file, as facts. */
export interface PluginCheckEnv {
  /** Folder of the config file (the working directory for inline config), to resolve relative paths. */
  readonly configDir: string;
  /** false (`validate --no-files`): leave alone the files the config names (a key file is taken as good). */
  readonly readFiles: boolean;
  /** Whether the top-level `stores.redis` is configured. */
  readonly redisConfigured: boolean;
  /** Names of the top-level `consumers`. */
  readonly consumerNames: ReadonlySet<string>;
  /** Every group some consumer is in. */
  readonly consumerGroups: ReadonlySet<string>;
  /** Why `name` cannot take HTTP requests (not defined, or tcp/udp targets), or undefined when it can. */
  readonly upstreamProblem: (name: string) => string | undefined;
}

export interface PluginDefinition<C = unknown> {
  readonly name: string;
  readonly phase: Phase;
  /**
   * For a request-phase plugin that also changes response bodies (xml, json-transform): its response hook runs in
   * this response phase, in list order, rather than among the request-phase plugins' hooks (reverse order, after
   * compress). So a transform runs before compress, and `xml` turns XML into JSON before `json-transform` edits it.
   */
  readonly responsePhase?: ResponsePhase;
  readonly schema: z.ZodType<C>;
  readonly description: string;
  /**
   * What `create` would refuse, as a list, before anything starts (`turnpike validate` and `start` run it on
   * a config its schema accepted): files that are missing or do not parse, secrets too short, a store or a
   * consumer that is not configured. Each problem's `path` is inside the plugin's config (`['keys', 0]`); the
   * loader places it at its line. Must not throw, must not echo a secret.
   */
  check?(config: C, env: PluginCheckEnv): readonly CheckProblem[];
  create(config: C, env: PluginEnv): PluginHooks;
}

/** Keeps the config type attached to the factory while storing plugins in one registry. */
export function definePlugin<C>(definition: PluginDefinition<C>): PluginDefinition<C> {
  return definition;
}
