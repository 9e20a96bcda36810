// Per-request state shared by the listener, the plugins and the forwarder. One object per request;
// fields are assigned in the constructor so every context has the same hidden class.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import type { Identity } from './auth/identity.ts';
import type { Gateway } from './observability/events.ts';
import type { RateDecision } from './limits/shared-store.ts';
import type { ForwardRoute } from './proxy/http-forwarder.ts';

/** A response head that response-phase plugins may change before it is written. */
export interface ResponseHead {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** The body a terminal produces (it streams through the stages plugins add); null for local replies and hits. */
  readonly body: ResponseBody | null;
}

/** Sees a response body as the client gets it (after every stage): the cache storing it while it streams. */
export interface BodyTap {
  write(chunk: Buffer): void;
  /** The whole body went to the client. Not called when the response failed or the client left. */
  end(): void;
}

/**
 * Rewrites a whole body (xml, json-transform, soap): the terminal holds the body (up to the route's maxBodySize)
 * and the head until every such stage ran, then sets Content-Length. A throw answers 502 TP_UPSTREAM_BAD_BODY
 * with its message instead; a returned Reply is sent instead of the head and body (soap: a Fault as a problem).
 */
export type WholeBodyStage = (body: Buffer) => Buffer | Reply;

/**
 * What response plugins do to a body a terminal produces: whole-body stages first (in the order added), then
 * streaming stages (transform-response plugins, then compress), taps see what the client gets. Arrays are made
 * on first use.
 */
export class ResponseBody {
  whole: WholeBodyStage[] | null = null;
  stages: Transform[] | null = null;
  taps: BodyTap[] | null = null;
  /**
   * A stage that carries the upstream's trailers in the body (gRPC-Web's trailer frame) takes them: they are
   * handed to it before the body ends, and not sent as HTTP trailers.
   */
  trailerSink: ((trailers: Record<string, string>) => void) | null = null;

  /** Adds a stage that needs the body whole (it runs before every streaming stage). */
  rewrite(stage: WholeBodyStage): void {
    (this.whole ??= []).push(stage);
  }

  transform(stage: Transform): void {
    (this.stages ??= []).push(stage);
  }

  tap(tap: BodyTap): void {
    (this.taps ??= []).push(tap);
  }
}

/**
 * Asked when an upstream answered (the head as the client would get it, before the response plugins) or failed
 * (status 0, head null). A Reply answers the client instead: a stored response after a 304, a stale one on an
 * error. Returning undefined, it may adapt the head and add the first body stages (gRPC-Web's translation).
 */
export type UpstreamOverride = (status: number, head: ResponseHead | null) => Reply | undefined;

/** A reply made by the gateway itself (a plugin short-circuit, respond, redirect, an error). */
export interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  /** The stable code (TP_*) of an error the gateway answers; the access log shows it as `error`. */
  readonly code?: string;
}

/** Until the listener sets the gateway the request arrived at (contexts built by hand in tests keep it). */
const NO_GATEWAY: Gateway = Object.freeze({ workerId: 0 });

export class RequestContext {
  readonly req: IncomingMessage;
  /** The gateway (runtime) serving this request: events carry it so subscribers keep to their own. */
  gateway: Gateway;
  readonly res: ServerResponse;
  readonly startTime: number;
  readonly clientIp: string;
  /** The address of the direct peer, and whether it is a trusted proxy (whose X-Forwarded-* we extend). */
  readonly peer: string;
  readonly trustedPeer: boolean;
  /** `http` or `https`, as the client used it (or as a trusted proxy said). */
  readonly scheme: string;
  requestId: string;
  /** Host header as received (:authority on HTTP/2), or the authority of an absolute-form request target. */
  readonly host: string;
  /** Path without the query, normalised; plugins (rewrite) may change it. */
  path: string;
  /** The query string including its leading `?`, or ''. */
  query: string;
  params: Record<string, string>;
  routeName: string;
  /** The request's API version (`versioning:`), for the access log and metrics; '' when none. */
  apiVersion: string;
  upstreamName: string;
  /** The target that served the request, for the access log only (never sent to clients). */
  target: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** Request headers to set upstream: [name, value, name, value, ...] (names lowercase). */
  setRequestHeaders: string[] | null;
  /** Request headers to drop before forwarding (lowercase). */
  removeRequestHeaders: Set<string> | null;
  /** Index of the last plugin whose request hook ran; response hooks of later plugins are skipped. */
  reached: number;
  errorCode: string;
  /** Set by the first authentication plugin that accepts the request. */
  identity: Identity | null;
  /** `WWW-Authenticate` challenges of the authentication plugins that refused it (sent with the 401). */
  authChallenges: string[] | null;
  /** Asked, in order, when the upstream answers or fails (a cache serving a stored response instead), or null. */
  upstreamOverrides: UpstreamOverride[] | null;
  /** What the cache did (HIT, MISS, STALE, BYPASS, REVALIDATED), for the access log; '' without a cache. */
  cacheStatus: string;
  /** The route's forwarding plan while a request is forwarded (a background cache refresh uses it), or null. */
  forwardRoute: ForwardRoute | null;
  /** A gRPC request (by route or content type): the gateway's own errors are gRPC statuses. */
  grpc: boolean;
  /** What goes upstream instead of the client's body (a decoding stage fed by it: gRPC-Web text), or null. */
  requestBodyStream: Readable | null;
  /** Rate-limit decisions of this request, by plugin, for the RateLimit response field. */
  rateDecisions: Map<symbol, RateDecision> | null;
  /** What the access log shows instead of the request target (a credential in the query redacted), or null. */
  logUrl: string | null;
  /**
   * The request body as plugins rewrote it (read whole within maxBodySize: `src/pipeline/request-body.ts`),
   * forwarded instead of the client's stream; null while the body streams.
   */
  requestBody: Buffer | null;
  /** Runs when the exchange ends (concurrency slots); at most a few per request. */
  onDone: (() => void) | null;
  /** The request carried a valid sticky cookie for a usable target (no new cookie is set). */
  stickyPinned: boolean;
  /**
   * The W3C trace id (32 hex) this request belongs to, for correlation (the access log): the client's
   * `traceparent`'s or a new one. Set by the traces subscriber at request start; undefined when tracing is off.
   */
  traceId: string | undefined;
  /** Upstream tries made (retries included); 0 when nothing was sent upstream. */
  attempts: number;
  /** The last try's wait for a new connection (TCP + TLS), in ms; -1 when it reused one or had none. */
  upstreamConnectMs: number;
  /** The last try's time from its start to the upstream's response head, in ms; -1 when there was none. */
  upstreamHeadersMs: number;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    peer: string,
    trustedPeer: boolean,
    clientIp: string,
    scheme: string,
    requestId: string,
    path: string,
    query: string,
    authority?: string,
  ) {
    this.req = req;
    this.res = res;
    this.gateway = NO_GATEWAY;
    this.startTime = performance.now();
    this.clientIp = clientIp;
    this.peer = peer;
    this.trustedPeer = trustedPeer;
    this.scheme = scheme;
    this.requestId = requestId;
    // HTTP/2 carries the host in :authority (a client may also send Host; :authority wins, RFC 9113 8.3.1).
    this.host = authority ?? (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '';
    this.path = path;
    this.query = query;
    this.params = EMPTY_PARAMS;
    this.routeName = '';
    this.apiVersion = '';
    this.upstreamName = '';
    this.target = '';
    this.status = 0;
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.setRequestHeaders = null;
    this.removeRequestHeaders = null;
    this.reached = -1;
    this.errorCode = '';
    this.stickyPinned = false;
    this.attempts = 0;
    this.upstreamConnectMs = -1;
    this.upstreamHeadersMs = -1;
    this.identity = null;
    this.authChallenges = null;
    this.onDone = null;
    this.requestBody = null;
    this.logUrl = null;
    this.rateDecisions = null;
    this.upstreamOverrides = null;
    this.cacheStatus = '';
    this.forwardRoute = null;
    this.requestBodyStream = null;
    this.traceId = undefined;
    const type = req.headers['content-type'];
    this.grpc = typeof type === 'string' && type.startsWith('application/grpc');
  }

  setRequestHeader(name: string, value: string): void {
    (this.setRequestHeaders ??= []).push(name, value);
    (this.removeRequestHeaders ??= new Set()).add(name);
  }

  /** Appends `fn` to the end-of-exchange callbacks (run once, when the response closes). */
  whenDone(fn: () => void): void {
    const prev = this.onDone;
    this.onDone =
      prev === null
        ? fn
        : () => {
            prev();
            fn();
          };
  }

  onUpstream(override: UpstreamOverride): void {
    (this.upstreamOverrides ??= []).push(override);
  }

  /** The first override's Reply for this upstream answer or failure, or undefined. */
  overrideUpstream(status: number, head: ResponseHead | null): Reply | undefined {
    const list = this.upstreamOverrides;
    if (list === null) return undefined;
    for (let i = 0; i < list.length; i++) {
      const reply = list[i]!(status, head);
      if (reply !== undefined) return reply;
    }
    return undefined;
  }

  removeRequestHeader(name: string): void {
    (this.removeRequestHeaders ??= new Set()).add(name);
  }
}

const EMPTY_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;
