// Tools for the upstream fault rows of the attack catalogue (S11, S14, U01-U12, C03, X05): a raw HTTP/1.1 client
// that reads one response head and its bytes, unreachable targets (a closed port, a blackhole), the end of an
// exchange as the event stream tells it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { RequestContext } from '../../src/request-context.ts';
import { nextEvent } from './events.ts';
import { startScriptedBackend, type ScriptedBackend } from './recording-backend.ts';

export interface RawResponse {
  /** Everything read, as latin1 text. */
  readonly text: string;
  readonly status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  readonly headers: Record<string, string>;
  /** The bytes after the head, as sent (chunked framing included). */
  readonly body: string;
  /** The status lines seen, interim ones included. */
  readonly statusLines: string[];
  /** The gateway closed (or reset) the connection. */
  readonly closed: boolean;
}

/**
 * Writes `payload` and reads until the gateway closes the connection (send `Connection: close`) or `timeoutMs`
 * passes; `onData` sees the text so far (to send more once an interim 100 arrived, say).
 */
export function rawRequest(
  port: number,
  payload: string | Buffer,
  options: { timeoutMs?: number; onData?: (text: string, socket: Socket) => void } = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      resolve(parseRaw(text, closed));
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, options.timeoutMs ?? 5000);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      options.onData?.(text, socket);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.write(payload);
  });
}

export function parseRaw(text: string, closed: boolean): RawResponse {
  const statusLines: string[] = [];
  let rest = text;
  let status = 0;
  let headers: Record<string, string> = {};
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    statusLines.push(lines[0]!);
    status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
    headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.slice(end + 4);
    if (status >= 200 || status === 0) break;
  }
  return { text, status, headers, body: rest, statusLines, closed };
}

/** The JSON body of a problem answer read raw (its `code`). */
export function problemCode(r: RawResponse): string {
  assertProblemType(r);
  return (JSON.parse(r.body) as { code: string }).code;
}

function assertProblemType(r: RawResponse): void {
  if (r.headers['content-type'] !== 'application/problem+json') throw new Error(`not a problem answer: ${r.text}`);
}

/** A port on 127.0.0.1 that nothing listens on (a connect gets RST). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

export interface Blackhole {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A local listener whose accept backlog is full (python3: listen(0), never accept, one connection already
 * queued): the kernel drops further SYNs, so a connect hangs as to a blackholed address, and no outside address
 * is ever a target.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const py: ChildProcess = spawn(
    'python3',
    [
      '-c',
      'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\n' +
        'print(s.getsockname()[1],flush=True)\nsys.stdin.read()',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await once(py.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const filler = connect(port, '127.0.0.1');
  filler.on('error', () => {});
  await once(filler, 'connect');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      filler.destroy();
      py.stdin!.end();
      if (py.exitCode === null) await once(py, 'exit');
    },
  };
}

/** The context of the next exchange of `gw` to end whose path is `path` (subscribe before sending). */
export async function nextExchangeEnd(
  gw: { runtime: { gateway: unknown } },
  path: string,
  timeoutMs = 5000,
): Promise<RequestContext> {
  const event = await nextEvent(
    'turnpike:request:end',
    gw.runtime.gateway,
    (e) => (e.ctx as RequestContext).path === path,
    `the end of ${path}`,
    timeoutMs,
  );
  return event.ctx as RequestContext;
}

/**
 * A scripted backend (startScriptedBackend) that calls `answer` once per complete request (head and its
 * Content-Length body), in order on each connection, with the request's method, path and text.
 */
export function startRequestScriptedBackend(
  answer: (socket: Socket, request: { method: string; path: string; text: string; conn: number }) => void,
): Promise<ScriptedBackend> {
  let backend: ScriptedBackend | undefined;
  const started = startScriptedBackend((socket, conn) => {
    let offset = 0;
    socket.on('data', () => {
      for (;;) {
        const text = backend!.raw[conn]!.slice(offset);
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        offset += end + 4 + length;
        const [, method, path] = /^(\S+) (\S+)/.exec(text)!;
        answer(socket, { method: method!, path: path!, text: text.slice(0, end + 4 + length), conn });
      }
    });
  });
  return started.then((b) => (backend = b));
}

/** How many requests (request lines) the backend's connections carried, in all. */
export function requestCount(backend: ScriptedBackend, path?: string): number {
  let n = 0;
  for (const text of backend.raw)
    n += (text.match(/^[A-Z]+ \/\S* HTTP\/1\.1\r$/gm) ?? []).filter(
      (l) => path === undefined || l.includes(` ${path} `),
    ).length;
  return n;
}
