// The stand-ins for a config's upstream targets during `turnpike test`: one real server on loopback port 0 per
// target (HTTP/1.1, or h2c for `http2: true` upstreams), each answering what the running case says (by default a
// 200 echo of the request as JSON) and recording what it received, under the target URL the config names.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Config } from '../config/schema.ts';
import { upstreamKind } from '../config/upstream-schema.ts';

export interface StubAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A request a stub received, as the target would have. */
export interface Received {
  /** The configured target URL (origin) this stub stands for. */
  readonly target: string;
  readonly method: string;
  readonly path: string;
  /** The query string without its `?` ('' for none). */
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export class UpstreamStubs {
  /** Configured target origin → the stub's origin (http://127.0.0.1:PORT). */
  readonly byTarget = new Map<string, string>();
  private readonly byStub = new Map<string, string>();
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  /** What the current case wants the upstream to answer (null: echo). */
  answer: StubAnswer | null = null;
  received: Received[] = [];

  static async start(config: Config): Promise<UpstreamStubs> {
    const stubs = new UpstreamStubs();
    try {
      for (const [name, upstream] of Object.entries(config.upstreams)) {
        if (upstreamKind(upstream) !== 'http') continue;
        const origins =
          upstream.discover !== undefined ? [discoveredStub(name)] : upstream.targets.map((t) => new URL(t.url).origin);
        for (const target of origins) {
          if (stubs.byTarget.has(target)) continue; // two upstreams may list one target: one stub serves both
          await stubs.add(target, upstream.http2);
        }
      }
    } catch (err) {
      await stubs.close();
      throw err;
    }
    return stubs;
  }

  private async add(target: string, h2: boolean): Promise<void> {
    const handle = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) =>
      this.handle(target, req, res);
    const server = (h2 ? createH2Server(handle) : createHttpServer(handle)) as Server;
    this.servers.push(server);
    // Closed at the end of the run whatever they hold (an HTTP/2 session would keep close() waiting).
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const stub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.byTarget.set(target, stub);
    this.byStub.set(stub, target);
  }

  /** The configured target a stub origin stands for ('' when the URL is no stub's). */
  targetOf(url: string): string {
    return URL.canParse(url) ? (this.byStub.get(new URL(url).origin) ?? '') : '';
  }

  private handle(
    target: string,
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (name.startsWith(':') || value === undefined) continue;
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const received: Received = {
        target,
        method: req.method ?? '',
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.received.push(received);
      const answer = this.answer ?? {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(received),
      };
      // The two response classes share this much of their API.
      const r = res as ServerResponse;
      r.statusCode = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) r.setHeader(name, value);
      r.end(answer.body);
    });
  }

  async close(): Promise<void> {
    const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
  }
}

/** The stub key of a discovered upstream: route tests never ask its source, one stub stands for its targets. */
export function discoveredStub(upstream: string): string {
  return `discovered:${upstream}`;
}
