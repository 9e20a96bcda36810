// What a terminal is: the last step of a route (forward upstream, answer locally, redirect ...), selected by the
// route's key of the same name. A kind compiles its config once per snapshot into a Terminal the listener runs.
import type { Socket } from 'node:net';
import type { CheckProblem } from '../config/problems.ts';
import type { RouteConfig } from '../config/schema.ts';
import type { Chain } from '../pipeline/chain.ts';
import type { ForwardRoute } from '../proxy/http-forwarder.ts';
import type { TunnelRoute } from '../proxy/upgrade-tunnel.ts';
import type { RequestContext } from '../request-context.ts';
import type { UpstreamPool } from '../upstream/pool.ts';

/** What compiling a terminal may use: the route, its chain and limits, and the snapshot's shared parts. */
export interface TerminalEnv {
  readonly routeName: string;
  readonly route: RouteConfig;
  /** Where the config's relative file paths start (the config file's folder). */
  readonly configDir: string;
  readonly chain: Chain;
  readonly maxBodySize: number;
  readonly requestTimeout: number;
  /** Idle time allowed between reads of the client's request body (0: off). */
  readonly clientBodyTimeout: number;
  /** Time a response may wait for the client to read it (0: off). */
  readonly sendTimeout: number;
  readonly upstreams: ReadonlyMap<string, UpstreamPool>;
  readonly requestIdHeader: string;
  readonly consumerHeaders: { readonly name: string; readonly groups: string };
}

/** Registers an open tunnel (it then stops counting as an in-flight request); returns its release. */
export type TunnelOpened = (close: () => void) => () => void;

export interface Terminal {
  /** Answers or forwards a request every request hook let through. */
  run(ctx: RequestContext): void;
  /** An Upgrade (WebSocket) request every request hook let through; terminals without it answer as run() does. */
  readonly upgrade?: (ctx: RequestContext, socket: Socket, head: Buffer, opened: TunnelOpened) => void;
  /** The upstream this route sends to ('' for none): the access log's `upstream`. */
  readonly upstreamName: string;
  /** The forwarding plan, for work beside the request (a cache's background refresh), or null. */
  readonly forward: (ForwardRoute & TunnelRoute) | null;
  /** What it would do with this request, without doing it or moving a rotation (`turnpike explain`). */
  readonly explain?: (ctx: RequestContext) => { readonly upstream?: string; readonly summary: string };
  /** Releases what the terminal holds of its own (gRPC channels) once its snapshot is retired and drained. */
  readonly close?: () => void;
}

/** What a terminal's config check may use (`turnpike validate`, `start`, a reload; see runtime/config-checks.ts). */
/** What a terminal's check sees besides its own config: the route as written, the upstreams defined. */
export interface TerminalCheckEnv {
  /** `route "NAME"` or `routes[N]`, for messages. */
  readonly who: string;
  /** The upstreams defined, by name, with the scheme of their targets (http, tcp, udp; undefined: none yet). */
  readonly upstreams: ReadonlyMap<string, string | undefined>;
  readonly configDir: string;
  /** false: `validate --no-files`, files the config names are left alone. */
  readonly readFiles: boolean;
  /** Why `name` cannot be this route's HTTP upstream (not defined, or tcp/udp targets), or undefined. */
  upstreamProblem(name: string): string | undefined;
}

export interface TerminalKind<C> {
  /** The route key that selects it (its config is that key's value, validated by config/schema.ts). */
  readonly key: string;
  compile(config: C, env: TerminalEnv): Terminal;
  /**
   * What `validate` must catch beyond the schema (upstreams or files the config names), as key paths under the
   * route's key; run by every load (src/runtime/config-checks.ts) on a config the schema accepted.
   */
  check?(config: C, env: TerminalCheckEnv): CheckProblem[];
}

/** Keeps the config type attached to the kind while storing kinds in one registry. */
export function defineTerminal<C>(kind: TerminalKind<C>): TerminalKind<C> {
  return kind;
}
