// The admin listener: a plain node:http server on admin.address:admin.port (never a public listener), routing
// with find-my-way over the endpoint registry. It checks the Bearer token of `token` endpoints when
// admin.auth.tokens is set (read per request, so a reload changes the tokens), and answers 401/404/405/500 as
// problem+json. It is started before the gateway's listeners and closed after they have drained, so /readyz
// answers 503 through a drain. A reload that moves it retires this one: it stops accepting at once, lets the
// requests it is answering finish (a POST /api/reload among them) and ends its event streams.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import FindMyWay from 'find-my-way';
import type { AdminConfig } from '../config/admin-schema.ts';
import { TurnpikeError } from '../errors.ts';
import { tokenMatches, bearerToken } from './admin-auth.ts';
import { sendProblem } from './admin-http.ts';
import type { AdminContext, AdminEndpoint, AdminMethod } from './endpoint.ts';

const METHODS: readonly AdminMethod[] = ['GET', 'POST', 'PUT', 'DELETE'];

export class AdminServer {
  private readonly server: Server;
  private readonly router = FindMyWay({ ignoreTrailingSlash: false, caseSensitive: true });
  private readonly context: AdminContext;
  /** The tokens in force (from the running config when there is one). */
  private readonly tokens: () => readonly string[] | undefined;
  /** Responses not yet closed, and those of them that are event streams (they never end on their own). */
  private readonly open = new Set<ServerResponse>();
  private readonly streams = new Set<ServerResponse>();
  private retiring = false;
  private closing: Promise<void> | null = null;

  private constructor(
    endpoints: readonly AdminEndpoint[],
    context: AdminContext,
    tokens: () => readonly string[] | undefined,
  ) {
    this.context = context;
    this.tokens = tokens;
    for (const e of endpoints) this.router.on(e.method, e.path, () => undefined, e);
    this.server = createServer((req, res) => void this.handle(req, res));
    // Long-lived SSE responses must not be cut by Node's request timeout.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 10_000;
  }

  static async start(
    config: AdminConfig,
    endpoints: readonly AdminEndpoint[],
    context: AdminContext,
    tokens: () => readonly string[] | undefined,
  ): Promise<AdminServer> {
    const admin = new AdminServer(endpoints, context, tokens);
    await new Promise<void>((resolve, reject) => {
      admin.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new TurnpikeError(
            'TP_LISTEN_FAILED',
            `admin listener cannot bind ${config.address}:${config.port}: ${err.code ?? err.message}`,
          ),
        ),
      );
      // SO_REUSEPORT (Linux), as every Turnpike listener: a binary upgrade (--handover) binds the port beside the
      // running process. A port held without --handover is refused before this (src/runtime/port-holders.ts).
      admin.server.listen({ port: config.port, host: config.address, reusePort: process.platform === 'linux' }, () =>
        resolve(),
      );
    });
    context.log.info({ listener: 'admin', address: config.address, port: admin.port }, 'listening');
    return admin;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get address(): string {
    return (this.server.address() as AddressInfo).address;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.open.add(res);
    res.once('close', () => {
      this.open.delete(res);
      this.streams.delete(res);
    });
    // A request that came on a kept-alive connection after the move is answered, then the connection closes.
    if (this.retiring) res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const found = METHODS.includes(method as AdminMethod) ? this.router.find(method as AdminMethod, path) : null;
    if (found === null) {
      const allowed = METHODS.filter((m) => this.router.find(m, path) !== null);
      if (allowed.length > 0) sendProblem(res, 'TP_METHOD_NOT_ALLOWED', undefined, { allow: allowed.join(', ') });
      else sendProblem(res, 'TP_ADMIN_NOT_FOUND', `no admin endpoint at ${path}`);
      return;
    }
    const endpoint = found.store as AdminEndpoint;
    if (endpoint.auth === 'token') {
      const tokens = this.tokens();
      if (tokens !== undefined && !tokenMatches(bearerToken(req), tokens)) {
        sendProblem(res, 'TP_ADMIN_UNAUTHORIZED', 'send Authorization: Bearer <one of admin.auth.tokens>', {
          'www-authenticate': 'Bearer realm="turnpike-admin"',
        });
        return;
      }
    }
    if (endpoint.stream === true) {
      if (this.retiring) {
        sendProblem(res, 'TP_ADMIN_NOT_READY', 'this admin listener is closing: a config reload moved or removed it');
        return;
      }
      this.streams.add(res);
    }
    try {
      await endpoint.handle(req, res, found.params, this.context);
    } catch (err) {
      if (err instanceof TurnpikeError) sendProblem(res, err.code, err.message);
      else {
        this.context.log.error(
          { path, error: (err as Error).message, stack: (err as Error).stack },
          'admin endpoint failed',
        );
        sendProblem(res, 'TP_INTERNAL');
      }
    }
  }

  /**
   * Stops accepting now and resolves once the requests in progress have been answered: event streams are ended,
   * every other response finishes (with `Connection: close` when its head is not out yet), and each connection
   * closes as soon as it is idle.
   */
  retire(): Promise<void> {
    this.retiring = true;
    const closed = this.stopAccepting();
    // close() drops the idle connections only once; one that finishes its response later is dropped then.
    const dropIdle = () => setImmediate(() => this.server.closeIdleConnections());
    for (const res of this.open) {
      res.once('finish', dropIdle);
      if (this.streams.has(res)) res.end();
      else if (!res.headersSent) res.shouldKeepAlive = false;
    }
    return closed;
  }

  /** Stops accepting and closes every connection (event streams included). */
  async close(): Promise<void> {
    const closed = this.stopAccepting();
    this.server.closeAllConnections();
    await closed;
  }

  /** Closes the listening socket once; resolves when the last connection has gone. */
  private stopAccepting(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => this.server.close(() => resolve()));
    return this.closing;
  }
}
