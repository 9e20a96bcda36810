// Real servers on port 0 for tests: backends that say who answered, and a gateway built from YAML text.
import { mkdtempSync, writeFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { startGateway, type Clock, type Gateway } from '../../src/index.ts';

export interface Backend {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A backend on port 0, or on `port` (to bring a killed target back at the same address); on 127.0.0.1, or on
 * `host` (another loopback address, 127.0.0.2, for a DNS answer that moves to another IP on the same port).
 */
export async function startBackend(handler: Handler, port = 0, host = '127.0.0.1'): Promise<Backend> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    url: `http://${host}:${bound}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A backend answering JSON { name, method, url, headers, body }. */
export function startEchoBackend(name: string, port = 0): Promise<Backend> {
  return startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', server: 'secret-backend/1.0', 'x-powered-by': 'php/5' });
      res.end(
        JSON.stringify({
          name,
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  }, port);
}

export const quietLog = pino({ level: 'silent' });

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'turnpike-test-'));
}

/**
 * Writes `yaml` to a temp file and starts a gateway from it (access log off unless the YAML sets it); `clock`
 * replaces the system clock (a ManualClock, test/helpers/clock.ts), `log` the silent log.
 */
export async function startGatewayYaml(
  yaml: string,
  options: { watch?: boolean; clock?: Clock; log?: Logger } = {},
): Promise<Gateway & { file: string }> {
  const file = join(tempDir(), 'turnpike.yaml');
  writeFileSync(file, /^accessLog:/m.test(yaml) ? yaml : `${yaml}\naccessLog: { enabled: false }\n`);
  const gateway = await startGateway({
    configFile: file,
    log: options.log ?? quietLog,
    watch: options.watch ?? false,
    clock: options.clock,
  });
  return Object.assign(gateway, { file });
}

export interface SimpleResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

type RequestOptions = { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; agent?: boolean };

export async function request(port: number, path: string, options: RequestOptions = {}): Promise<SimpleResponse> {
  const r = await requestBytes(port, path, options);
  return { status: r.status, headers: r.headers, body: r.body.toString() };
}

/** As request(), with the body as the bytes that came (still encoded, when a Content-Encoding says so). */
export function requestBytes(
  port: number,
  path: string,
  options: RequestOptions = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: options.agent === false ? false : undefined,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export function json<T = any>(r: SimpleResponse): T {
  return JSON.parse(r.body) as T;
}

/** `n` requests to `/` one after another: the `name` of the echo backend that answered each, or the status. */
export async function answerers(port: number, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(port, '/');
    names.push(r.status === 200 ? (json(r).name as string) : String(r.status));
  }
  return names;
}
