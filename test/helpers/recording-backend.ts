// Backends for the attack catalogue (test/attacks/): they record exactly what arrived, so a verdict is taken on the
// backend's side too (a 400 to the client is not enough if bytes already reached the backend).
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';

/** One request as the backend's HTTP parser read it. */
export interface Arrival {
  /** Order of arrival, from 0 across all connections. */
  readonly seq: number;
  /** Which accepted connection it came on, from 0. */
  readonly conn: number;
  readonly method: string;
  readonly url: string;
  /** Name/value pairs as sent (case kept, duplicates kept). */
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  readonly sha256: string;
  /** False when the request body did not end cleanly (the gateway aborted it). */
  readonly complete: boolean;
}

export interface RecordingBackend {
  readonly port: number;
  readonly url: string;
  /** Requests whose head arrived, in order (bodies filled in once read). */
  readonly arrivals: Arrival[];
  /** Every byte each accepted connection delivered, as latin1 text, by connection number. */
  readonly raw: string[];
  /** Connections accepted so far. */
  connections(): number;
  /** Resolves once `n` requests have arrived and their bodies ended (or aborted). */
  untilArrivals(n: number): Promise<void>;
  close(): Promise<void>;
}

export type RecordingHandler = (req: IncomingMessage, res: ServerResponse, arrival: Arrival) => void;

/** The default answer: JSON { method, url, headers, length, sha256 } with a Content-Length. */
export const echoArrival: RecordingHandler = (_req, res, a) => {
  const body = JSON.stringify({
    method: a.method,
    url: a.url,
    headers: a.headers,
    length: a.body.length,
    sha256: a.sha256,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * An HTTP/1.1 backend on port 0 that records each request (method, target, raw headers, body and its sha256) and
 * every raw byte per connection, then lets `handler` answer once the body has been read.
 */
export async function startRecordingBackend(
  handler: RecordingHandler = echoArrival,
  options: { readonly maxHeaderSize?: number } = {},
): Promise<RecordingBackend> {
  const arrivals: Arrival[] = [];
  const raw: string[] = [];
  const sockets = new Set<Socket>();
  let settled = 0;
  const progress = new EventEmitter();
  // `maxHeaderSize`: above the gateway's own limit, to record what the gateway let through instead of refusing it.
  const http = createServer({ requireHostHeader: false, maxHeaderSize: options.maxHeaderSize }, (req, res) => {
    const conn = (req.socket as Socket & { tpConn?: number }).tpConn ?? -1;
    const chunks: Buffer[] = [];
    const seq = arrivals.length;
    const partial = {
      seq,
      conn,
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body: Buffer.alloc(0),
      sha256: sha256(Buffer.alloc(0)),
      complete: false,
    };
    arrivals.push(partial);
    let done = false;
    const finish = (complete: boolean) => {
      if (done) return;
      done = true;
      const body = Buffer.concat(chunks);
      const arrival: Arrival = { ...partial, body, sha256: sha256(body), complete };
      arrivals[seq] = arrival;
      settled++;
      progress.emit('settled');
      if (complete) handler(req, res, arrival);
    };
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => finish(true));
    req.on('aborted', () => finish(false));
    req.on('close', () => finish(req.complete));
    req.on('error', () => finish(false));
  });
  // Raw bytes are read here and handed to the HTTP parser as data events (the parser otherwise reads the socket
  // natively, past any JS listener).
  const server: NetServer = createNetServer((socket) => {
    const n = raw.length;
    raw.push('');
    sockets.add(socket);
    (socket as Socket & { tpConn?: number }).tpConn = n;
    socket.on('data', (c: Buffer) => (raw[n] += c.toString('latin1')));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
    if (handle) handle._consumed = true;
    http.emit('connection', socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    arrivals,
    raw,
    connections: () => raw.length,
    async untilArrivals(n) {
      while (settled < n) await once(progress, 'settled');
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      http.close();
    },
  };
}

export interface ScriptedBackend {
  readonly port: number;
  readonly url: string;
  /** Every byte each accepted connection delivered, as latin1 text, by connection number. */
  readonly raw: string[];
  connections(): number;
  /** Resolves once connection `conn` has delivered text for which `done` is true. */
  untilReceived(conn: number, done: (text: string) => boolean): Promise<string>;
  close(): Promise<void>;
}

/**
 * A TCP backend on port 0 whose answers are written by hand: `script` gets each accepted socket, its number and
 * a promise of the first complete request head (text up to the blank line), and writes whatever bytes the case
 * needs (broken framing, 1xx, truncation, a reset).
 */
export async function startScriptedBackend(
  script: (socket: Socket, conn: number, head: Promise<string>) => void,
): Promise<ScriptedBackend> {
  const raw: string[] = [];
  const sockets = new Set<Socket>();
  const progress = new EventEmitter();
  const server = createNetServer((socket) => {
    const n = raw.length;
    raw.push('');
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const head = new Promise<string>((resolve) => {
      const onData = (c: Buffer) => {
        raw[n] += c.toString('latin1');
        progress.emit('data', n);
        const end = raw[n]!.indexOf('\r\n\r\n');
        if (end >= 0) resolve(raw[n]!.slice(0, end + 4));
      };
      socket.on('data', onData);
    });
    script(socket, n, head);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    raw,
    connections: () => raw.length,
    async untilReceived(conn, done) {
      while (!(raw[conn] !== undefined && done(raw[conn]))) await once(progress, 'data');
      return raw[conn]!;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
