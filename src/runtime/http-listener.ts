// The listener: accepts HTTP/1.1, builds the request context, routes, runs the plugin chain and the terminal.
import { randomUUID } from 'node:crypto';
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { clientIdentity, formatClientCertHeader } from '../tls/client-auth.ts';
import { peerAddressOf, proxiedClient } from './proxy-protocol-gate.ts';
import { runLogHooks, runRequestHooks, TERMINAL_REACHED, type Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { writeRawProblem } from '../pipeline/problem.ts';
import { sendProblem, sendReply } from '../pipeline/reply.ts';
import { normalizeAddress } from '../proxy/client-ip.ts';
import { checkRequestHead, refuseHead } from '../proxy/request-head.ts';
import { offers, tunnelsUpgrade } from '../proxy/upgrade-tunnel.ts';
import { tlsSocketOf } from './h2-guarded-socket.ts';
import { CHANNELS, publishRefusal, publishRequest, type Gateway } from '../observability/events.ts';
import type { ErrorCode } from '../errors.ts';
import { RequestContext, type Reply } from '../request-context.ts';
import type { CompiledListener, CompiledRoute, Snapshot } from './snapshot.ts';
import { deprecate, versionNotFoundReply } from './route-versions.ts';
import { NOT_A_PATH, parseRequestTarget } from './url-path.ts';
import { ACME_CHALLENGE_PREFIX, type AcmeManagers } from '../acme/managers.ts';

/** What the listener needs from the runtime; read on every request so a reload takes effect at once. */
export interface ListenerHost {
  readonly current: Snapshot;
  readonly draining: boolean;
  /** Set once a stop has closed the listening sockets: from then on every response says Connection: close. */
  readonly endingConnections: boolean;
  /** Which gateway the listener's requests belong to (their events carry it). */
  readonly gateway: Gateway;
  /** Registers an open tunnel; returns the function to call when it closes. */
  trackTunnel(close: () => void): () => void;
  /** The ACME managers: their certificates (https listeners) and http-01 answers (every http listener). */
  readonly acme?: AcmeManagers;
}

const kState = Symbol('turnpike.request');
interface RequestState {
  readonly ctx: RequestContext;
  readonly snapshot: Snapshot;
  readonly host: ListenerHost;
  /** The chain whose log hooks run at the end: the route's, or the global one. */
  chain: Chain;
  /** Whether this request still counts as in flight on its snapshot (an open tunnel stops counting). */
  counted: boolean;
}

function releaseSnapshot(state: RequestState): void {
  if (!state.counted) return;
  state.counted = false;
  const snapshot = state.snapshot;
  if (--snapshot.inFlight === 0 && snapshot.retired) snapshot.onDrained?.();
}

const VALID_REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export function createHttpServer(host: ListenerHost, key: string, listener: CompiledListener): Server {
  const server = createServer(
    {
      // Node refuses a head whose target, names and values reach its maxHeaderSize; Turnpike's limit is inclusive.
      maxHeaderSize: listener.maxHeaderSize + 1,
      headersTimeout: listener.headerTimeout,
      requestTimeout: listener.requestTimeout,
      keepAliveTimeout: listener.keepAliveTimeout,
      connectionsCheckingInterval: 1000,
      // refuseHead answers a missing Host with a problem (Node's own 400 has no body).
      requireHostHeader: false,
      noDelay: true,
      // Only WebSocket is tunnelled, unless the route lists the protocol in `upgrades`: any other Upgrade (h2c above
      // all) is an ordinary request, its upgrade dropped.
      shouldUpgradeCallback: upgradeCallback(host, key),
    },
    (req, res) => handleRequest(host, key, req, res),
  );
  // Expect: 100-continue is answered only once the request is routed and about to be forwarded, so a 404,
  // 413 or 401 reaches the client before it uploads anything.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handleRequest(host, key, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(host, key, req, socket, head),
  );
  // Without a listener Node closes a CONNECT's socket unanswered; refuseHead answers it.
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(host, key, req, socket, head),
  );
  // Node keeps this many header fields and drops the rest; one past the limit is kept so refuseHead sees it.
  server.maxHeadersCount = listener.maxHeaderCount + 1;
  server.on('clientError', clientErrorHandler(host, listener));
  return server;
}

/** Answers what Node's parser refused (or timed out) with a problem, once, and publishes the refusal. */
export function clientErrorHandler(
  host: ListenerHost,
  listener: CompiledListener,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // A request whose head was answered (refuseHead) and whose body then breaks the parser gets no second answer.
    const answered = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (answered != null && answered.headersSent)) {
      socket.destroy();
      return;
    }
    const code =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? 'TP_HEADERS_TOO_LARGE'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'TP_REQUEST_TIMEOUT'
          : 'TP_BAD_REQUEST';
    refuseConnection(host, listener, socket, code);
  };
}

/** Answers a client refused before it had a request (a parse error, the request line gate) and publishes it. */
export function refuseConnection(
  host: ListenerHost,
  listener: CompiledListener,
  socket: Socket,
  code: ErrorCode,
  detail?: string,
): void {
  writeRawProblem(socket, code, detail);
  publishRefusal({
    gateway: host.gateway,
    listener: listener.config.name,
    protocol: 'http/1.1',
    clientIp: normalizeAddress(proxiedClient(socket)?.address ?? peerAddressOf(socket) ?? ''),
    code,
  });
}

/** Node's shouldUpgradeCallback: WebSocket, or a protocol the route the request reaches lists in `upgrades`. */
export function upgradeCallback(host: ListenerHost, key: string): (req: IncomingMessage) => boolean {
  return (req) => tunnelsUpgrade(req) || routeTunnels(host, key, req);
}

/** A non-WebSocket Upgrade is tunnelled only when the route the request reaches lists one offered protocol. */
function routeTunnels(host: ListenerHost, key: string, req: IncomingMessage): boolean {
  const snapshot = host.current;
  const offered = req.headers.upgrade;
  if (!snapshot.otherUpgrades || offered === undefined) return false;
  const listener = snapshot.listeners.get(key);
  if (listener === undefined) return false;
  const target = parseRequestTarget(req.url ?? '', listener.pathPolicy);
  if (typeof target === 'string') return false;
  const hostHeader = target.authority ?? req.headers.host ?? '';
  const match = snapshot.router.find(req.method!, hostHeader, target.path, req.headers, target.query);
  const upgrades = match?.value?.upgrades;
  if (upgrades == null) return false;
  for (const p of upgrades) if (offers(offered, p)) return true;
  return false;
}

/** Applies timeouts of a new snapshot to a server that stays open across a reload. */
export function updateHttpServer(server: Server, listener: CompiledListener): void {
  server.headersTimeout = listener.headerTimeout;
  server.requestTimeout = listener.requestTimeout;
  server.keepAliveTimeout = listener.keepAliveTimeout;
  server.maxHeadersCount = listener.maxHeaderCount + 1;
}

const kRequests = Symbol('turnpike.requestsOnConnection');

/**
 * maxRequestsPerConnection on HTTP/1.1 (HTTP/2 counts streams per session): the last response closes. Counted here
 * rather than with Node's maxRequestsPerSocket, which says Connection: close but leaves the socket open until the
 * keep-alive timeout.
 */
function countOnConnection(req: IncomingMessage): number {
  const socket = req.socket as Socket & { [kRequests]?: number };
  return (socket[kRequests] = (socket[kRequests] ?? 0) + 1);
}

function onResponseClose(this: ServerResponse): void {
  const state = (this as unknown as Record<symbol, RequestState>)[kState]!;
  releaseSnapshot(state);
  const ctx = state.ctx;
  const done = ctx.onDone;
  if (done !== null) {
    ctx.onDone = null;
    done();
  }
  if (state.chain.log.length > 0) {
    try {
      runLogHooks(state.chain, ctx);
    } catch (err) {
      failInternally(ctx, null, err); // the response is over: only reported
    }
  }
  publishRequest(CHANNELS.requestEnd, ctx);
}

function beginRequest(host: ListenerHost, key: string, req: IncomingMessage, res: ServerResponse): RequestState | null {
  const snapshot = host.current;
  const listener = snapshot.listeners.get(key);
  if (listener === undefined) {
    res.destroy();
    return null;
  }
  const maxRequests = listener.maxRequestsPerConnection;
  if (maxRequests > 0 && req.httpVersionMajor === 1 && !(req as { upgrade?: boolean }).upgrade) {
    const n = countOnConnection(req);
    // Pipelined past the last: left unanswered, the connection closes after the last response.
    if (n > maxRequests) return null;
    if (n === maxRequests) res.shouldKeepAlive = false;
  }
  snapshot.inFlight++;
  const headers = req.headers;
  // Behind a load balancer speaking PROXY protocol, the client it named is the peer.
  const proxied = listener.config.proxyProtocol ? proxiedClient(req.socket) : undefined;
  const peer = proxied?.address ?? normalizeAddress(peerAddressOf(req.socket));
  const trust = listener.trust;
  const trustedPeer = !trust.empty && trust.trusts(peer);
  const xff = headers['x-forwarded-for'];
  const clientIp = trustedPeer ? trust.clientIp(peer, Array.isArray(xff) ? xff.join(',') : xff) : peer;
  const forwardedProto = trustedPeer ? headers['x-forwarded-proto'] : undefined;
  const scheme = typeof forwardedProto === 'string' ? forwardedProto : listener.scheme;
  const incomingId = headers[snapshot.requestIdHeader];
  const requestId = typeof incomingId === 'string' && VALID_REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
  const parsed = parseRequestTarget(req.url ?? '', listener.pathPolicy);
  const target = typeof parsed === 'string' ? null : parsed;
  const ctx = new RequestContext(
    req,
    res,
    peer,
    trustedPeer,
    clientIp,
    scheme,
    requestId,
    target?.path ?? '/',
    target?.query ?? '',
    target?.authority,
  );
  ctx.gateway = host.gateway;
  publishRequest(CHANNELS.requestStart, ctx);
  const global = snapshot.globalChain;
  const state: RequestState = { ctx, snapshot, host, chain: global, counted: true };
  (res as unknown as Record<symbol, RequestState>)[kState] = state;
  res.once('close', onResponseClose);
  if (host.endingConnections) res.shouldKeepAlive = false;
  const refusal = refuseHead(req, listener);
  if (refusal !== null) {
    res.shouldKeepAlive = false;
    sendProblem(ctx, global, refusal.code, refusal.detail);
    return null;
  }
  if (target === null) {
    res.shouldKeepAlive = false;
    const code = parsed === NOT_A_PATH ? 'TP_BAD_REQUEST' : 'TP_BAD_PATH';
    sendProblem(ctx, global, code, parsed as string);
    return null;
  }
  const refused = checkRequestHead(ctx, listener.underscoreHeaders);
  if (refused !== null) {
    res.shouldKeepAlive = false;
    sendProblem(ctx, global, 'TP_BAD_REQUEST', refused);
    return null;
  }
  // TRACE echoes the request (cookies, credentials a proxy added) back to whoever can make a browser send it.
  if (req.method === 'TRACE') {
    sendProblem(ctx, global, 'TP_METHOD_NOT_ALLOWED', `${req.method} is not served`);
    return null;
  }
  // The well-known responder: ACME http-01 answers, on every http listener, before redirectToHttps and routing.
  const acme = host.acme;
  if (
    acme !== undefined &&
    acme.size > 0 &&
    listener.config.protocol === 'http' &&
    ctx.path.startsWith(ACME_CHALLENGE_PREFIX) &&
    (req.method === 'GET' || req.method === 'HEAD')
  ) {
    answerChallenge(ctx, global, acme, ctx.path.slice(ACME_CHALLENGE_PREFIX.length));
    return null;
  }
  if (listener.hsts !== null) res.setHeader('strict-transport-security', listener.hsts);
  // A client's own X-Forwarded-Client-Cert is never believed (Envoy's sanitize), on any listener.
  if (req.headers['x-forwarded-client-cert'] !== undefined) ctx.removeRequestHeader('x-forwarded-client-cert');
  if (listener.sniMustMatchHost && misdirected(tlsSocketOf(req.socket).servername, ctx.host)) {
    sendProblem(ctx, global, 'TP_MISDIRECTED_REQUEST', 'the Host of this request is not the TLS server name');
    return null;
  }
  if (listener.clientCertHeader !== null) {
    // Whatever the client sent under this name is dropped; only a verified certificate fills it.
    ctx.removeRequestHeader(listener.clientCertHeader);
    const identity = clientIdentity(tlsSocketOf(req.socket));
    if (identity !== null) ctx.setRequestHeader(listener.clientCertHeader, formatClientCertHeader(identity));
  }
  if (listener.redirectToHttps !== 0) {
    const hostname = ctx.host.replace(/:\d+$/, '');
    const location = `https://${hostname}${listener.redirectToHttps === 443 ? '' : `:${listener.redirectToHttps}`}${req.url ?? '/'}`;
    sendReply(ctx, global, {
      status: 308,
      headers: { location, 'content-type': 'text/plain; charset=utf-8' },
      body: `Redirecting to ${location}\n`,
    });
    return null;
  }
  return state;
}

/** An http-01 token's key authorization (RFC 8555 §8.3), wherever it was published (storage), or 404. */
function answerChallenge(ctx: RequestContext, global: Chain, acme: AcmeManagers, token: string): void {
  acme.httpAnswer(token).then(
    (answer) =>
      answer === undefined
        ? sendProblem(ctx, global, 'TP_ROUTE_NOT_FOUND', 'no pending ACME challenge has this token')
        : sendReply(ctx, global, {
            status: 200,
            headers: { 'content-type': 'application/octet-stream' },
            body: answer,
          }),
    () => sendProblem(ctx, global, 'TP_STORE_UNAVAILABLE', 'the ACME storage could not be read'),
  );
}

/**
 * Finds the route and records it on the context. Without one, the global plugins still run (a global
 * authentication answers 401, CORS answers a preflight) before the 404, which carries their headers.
 */
function routeOf(state: RequestState): CompiledRoute | null {
  const { ctx, snapshot } = state;
  const req = ctx.req;
  const match = snapshot.router.find(req.method!, ctx.host, ctx.path, req.headers, ctx.query);
  if (match === undefined || 'versions' in match) {
    const global = snapshot.globalChain;
    if (match?.version !== undefined) ctx.apiVersion = match.version;
    guarded(ctx, global, () => {
      const reply = global.request.length === 0 ? undefined : runRequestHooks(global, ctx);
      const answer = (r: Reply | undefined) =>
        r !== undefined
          ? sendReply(ctx, global, r)
          : match === undefined
            ? sendProblem(ctx, global, 'TP_ROUTE_NOT_FOUND')
            : sendReply(ctx, global, versionNotFoundReply(match, ctx.requestId));
      return reply instanceof Promise ? reply.then(answer) : answer(reply);
    });
    return null;
  }
  if (match.value === undefined) {
    // The path's most specific route does not take this method: 405, not a less protected route (router.ts).
    ctx.res.setHeader('allow', match.allow);
    sendProblem(ctx, snapshot.globalChain, 'TP_METHOD_NOT_ALLOWED', `${req.method} is not allowed on this path`);
    return null;
  }
  const route = match.value;
  ctx.params = match.params;
  if (match.version !== undefined) ctx.apiVersion = match.version;
  // A version read from a `/v{version}` prefix: the route is written without it, and so is the upstream's path.
  if (match.path !== undefined) ctx.path = match.path;
  ctx.routeName = route.name;
  ctx.upstreamName = route.terminal.upstreamName;
  ctx.forwardRoute = route.terminal.forward;
  state.chain = route.chain;
  publishRequest(CHANNELS.routeMatched, ctx, { route: route.name });
  if (route.grpc) ctx.grpc = true;
  if (route.deprecation !== null && deprecate(ctx, route.deprecation, snapshot.clock)) {
    sendProblem(ctx, route.chain, 'TP_VERSION_SUNSET', `this route was retired on ${ctx.res.getHeader('sunset')}`);
    return null;
  }
  if (route.requireClientCert && clientIdentity(tlsSocketOf(req.socket)) === null) {
    sendProblem(ctx, route.chain, 'TP_CLIENT_CERT_REQUIRED');
    return null;
  }
  return route;
}

/**
 * Runs `work` (request hooks, a terminal) so that a throw or a rejection anywhere in it answers 500 TP_INTERNAL
 * for this request instead of escaping.
 */
function guarded(ctx: RequestContext, chain: Chain, work: () => void | Promise<void>): void {
  try {
    const pending = work();
    if (pending !== undefined) pending.catch((err: unknown) => failInternally(ctx, chain.echoRequestId, err));
  } catch (err) {
    failInternally(ctx, chain.echoRequestId, err);
  }
}

export function handleRequest(host: ListenerHost, key: string, req: IncomingMessage, res: ServerResponse): void {
  // A pipelined request gets the connection once the answer before it is out (Node emits it at once): so requests
  // reach the backend in the client's order, and none after a refusal that closes the connection is forwarded.
  if (res.socket === null) {
    res.once('socket', () => handleRequest(host, key, req, res));
    return;
  }
  const state = beginRequest(host, key, req, res);
  if (state === null) return;
  const route = routeOf(state);
  if (route === null) return;
  const ctx = state.ctx;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > route.maxBodySize) {
    res.shouldKeepAlive = false;
    sendProblem(ctx, route.chain, 'TP_BODY_TOO_LARGE', `the body may be at most ${route.maxBodySize} bytes`);
    return;
  }
  // The guard written out (no closure per request on the common path): a throw or rejection answers 500.
  const chain = route.chain;
  try {
    const reply = chain.request.length === 0 ? noRequestHooks(ctx) : runRequestHooks(chain, ctx);
    if (reply instanceof Promise) {
      reply
        .then((r) => runTerminal(ctx, route, r))
        .catch((err: unknown) => failInternally(ctx, chain.echoRequestId, err));
    } else {
      runTerminal(ctx, route, reply);
    }
  } catch (err) {
    failInternally(ctx, chain.echoRequestId, err);
  }
}

/** A chain without request hooks reaches the terminal at once, so every response hook runs. */
function noRequestHooks(ctx: RequestContext): undefined {
  ctx.reached = TERMINAL_REACHED;
  return undefined;
}

function runTerminal(ctx: RequestContext, route: CompiledRoute, reply: Reply | undefined): void {
  if (reply !== undefined) return sendReply(ctx, route.chain, reply);
  if (ctx.res.destroyed) return;
  route.terminal.run(ctx);
}

export function handleUpgrade(
  host: ListenerHost,
  key: string,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): void {
  // A response object on the raw socket lets errors and local replies use the normal reply path.
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => socket.end());
  socket.on('error', () => socket.destroy());
  const state = beginRequest(host, key, req, res);
  if (state === null) return;
  const route = routeOf(state);
  if (route === null) return;
  const ctx = state.ctx;
  const upgrade = route.terminal.upgrade;
  const proceed = (reply: Reply | undefined) => {
    if (reply !== undefined || upgrade === undefined) return runTerminal(ctx, route, reply);
    // The response object stays on the socket: its 'close' (when the tunnel ends) logs the request.
    upgrade(ctx, socket, head, (close) => {
      // An open tunnel uses no pool, so it must not hold the old snapshot's pools open across reloads.
      releaseSnapshot(state);
      return host.trackTunnel(close);
    });
  };
  guarded(ctx, route.chain, () => {
    const reply = route.chain.request.length === 0 ? noRequestHooks(ctx) : runRequestHooks(route.chain, ctx);
    if (reply instanceof Promise) return reply.then(proceed);
    proceed(reply);
  });
}

/** An mTLS connection made for one name (SNI) asking for another host (NGINX answers 421 too). No SNI: the
 *  default certificate's connection, checked by the same client CA, asks for what it likes. */
function misdirected(servername: string | false | null | undefined, host: string): boolean {
  if (!servername) return false;
  let name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name.toLowerCase() !== servername.toLowerCase();
}
