// The soak's traffic: HTTP/1.1 (plain and TLS, kept alive), h2c and h2 over TLS (multiplexed), WebSocket
// (plain and TLS, echoed messages on long-lived sockets that are replaced now and then), and connection churn
// (a new connection, TLS or not, per request). 1 % of the HTTP requests go to a failing backend path.
// Every answer is checked against what that path must give; anything else is an unexpected error.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { Pool } from 'undici';
import WebSocket from 'ws';

export interface Endpoints {
  readonly http: number;
  readonly https: number;
  /** PEM of the CA that signed the gateway's certificate (for localhost). */
  readonly ca: string;
}

export const KINDS = ['h1', 'h1-tls', 'h2c', 'h2-tls', 'ws', 'ws-tls', 'churn', 'churn-tls'] as const;
export type Kind = (typeof KINDS)[number];
/** Shares of the traffic by kind (sum 100). */
const WEIGHTS: Readonly<Record<Kind, number>> = {
  h1: 25,
  'h1-tls': 15,
  h2c: 15,
  'h2-tls': 20,
  ws: 6,
  'ws-tls': 6,
  churn: 6,
  'churn-tls': 7,
};
const FAULTS = ['/fault/reset', '/fault/reset-mid', '/fault/503', '/fault/slow', '/fault/hang'] as const;
const FAULT_SHARE = Number(process.env.SOAK_FAULT_SHARE ?? 0.01);
const CLIENT_TIMEOUT_MS = 10_000;
const WS_SOCKETS = 4; // per kind
const WS_MESSAGES_PER_SOCKET = 500; // then the socket is closed and a new one opened

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/** Counters of one interval (the soak prints and resets them at each sample). */
export interface Tally {
  ok: number;
  /** Faults that failed the way they must (502, 503, 504, an aborted body). */
  expectedFaults: number;
  unexpected: number;
  /** Requests the scheduler could not start because too many were in flight (the gateway fell behind). */
  shed: number;
  byKind: Record<string, number>;
  latenciesMs: number[];
  /** The first few unexpected errors, to say what they were. */
  errors: string[];
}

export function newTally(): Tally {
  return { ok: 0, expectedFaults: 0, unexpected: 0, shed: 0, byKind: {}, latenciesMs: [], errors: [] };
}

function expected(path: string, a: Answer | Error): boolean {
  if (a instanceof Error) return path === '/fault/reset-mid';
  switch (path) {
    case '/ok/100b':
    case '/fault/slow':
      return a.status === 200 && a.body.length === 100;
    case '/ok/64k':
      return a.status === 200 && a.body.length === 65536;
    case '/fault/reset':
      return a.status === 502;
    case '/fault/reset-mid': // a complete body would be a fake completion
      return a.status === 200 && a.body.length < 65536;
    case '/fault/503':
      return a.status === 503;
    case '/fault/hang':
      return a.status === 504;
    default:
      return false;
  }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: no answer within ${CLIENT_TIMEOUT_MS} ms`)),
        CLIENT_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

class H2Client {
  private session: http2.ClientHttp2Session | undefined;
  /** Every session not yet closed, the retired ones included: `close` ends them all. */
  private readonly open = new Set<http2.ClientHttp2Session>();
  private readonly authority: string;
  private readonly ca: string | undefined;
  constructor(authority: string, ca?: string) {
    this.authority = authority;
    this.ca = ca;
  }
  private get(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const s = http2.connect(this.authority, this.ca ? { ca: this.ca, servername: 'localhost' } : {});
    s.on('error', () => {}); // the stream that was using it reports the failure
    s.on('goaway', () => this.retire(s));
    s.on('close', () => this.open.delete(s));
    this.open.add(s);
    this.session = s;
    return s;
  }
  /** No new stream goes to `s`; its streams in flight finish, then it closes (whoever refused or ended it). */
  private retire(s: http2.ClientHttp2Session): void {
    if (this.session === s) this.session = undefined;
    if (!s.closed) s.close();
  }
  /**
   * A stream the gateway refused (REFUSED_STREAM: it arrived after the GOAWAY that ends a connection at
   * maxRequestsPerConnection) was never processed (RFC 9113 §8.7): it is sent again on a new connection, once,
   * as browsers and proxies do. Only the session that refused it is retired: several streams refused at once
   * must not each drop the new session the first of them opened (that left sessions open, forgotten, until the
   * gateway's keep-alive timeout, and the soak counted them as leaked descriptors).
   */
  async request(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
    const session = this.get();
    try {
      return await this.once(session, method, path, headers, body);
    } catch (err) {
      if ((err as { refused?: boolean }).refused !== true) throw err;
      this.retire(session);
      return this.once(this.get(), method, path, headers, body);
    }
  }
  private once(
    session: http2.ClientHttp2Session,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: !body });
      const chunks: Buffer[] = [];
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
          reject(new Error(`h2 stream reset (code ${stream.rstCode})`));
        else resolve({ status, body: Buffer.concat(chunks) });
      });
      stream.on('error', (err) =>
        reject(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? Object.assign(err, { refused: true }) : err),
      );
      stream.on('close', () => reject(new Error(`h2 stream closed (code ${stream.rstCode})`)));
      if (body) stream.end(body);
    });
  }
  close(): void {
    this.session = undefined;
    for (const s of this.open) s.close();
  }
}

function churnRequest(tls: boolean, port: number, ca: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, agent: false as const };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    };
    const req = tls
      ? https.get({ ...options, ca, servername: 'localhost' }, onResponse)
      : http.get(options, onResponse);
    req.on('error', reject);
  });
}

/** A WebSocket that echoes: each send resolves when the same bytes come back (the backend echoes in order). */
class EchoSocket {
  private readonly url: string;
  private readonly ca: string | undefined;
  private ws: WebSocket | undefined;
  private opening: Promise<WebSocket> | undefined;
  private waiting: Array<{ sent: Buffer; resolve: () => void; reject: (e: Error) => void }> = [];
  private used = 0;
  constructor(url: string, ca?: string) {
    this.url = url;
    this.ca = ca;
  }
  private open(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= new Promise<WebSocket>((resolve, reject) => {
      // ws hands servername on to tls.connect (its types do not list it).
      const tls = this.ca ? ({ ca: this.ca, servername: 'localhost' } as WebSocket.ClientOptions) : {};
      const ws = new WebSocket(this.url, tls);
      ws.on('open', () => {
        this.ws = ws;
        this.opening = undefined;
        this.used = 0;
        resolve(ws);
      });
      ws.on('message', (data: Buffer) => {
        const w = this.waiting.shift();
        if (!w) return;
        if (data.equals(w.sent)) w.resolve();
        else w.reject(new Error('WebSocket echo differs from what was sent'));
      });
      const fail = (why: string) => {
        this.opening = undefined;
        if (this.ws === ws) this.ws = undefined;
        for (const w of this.waiting.splice(0)) w.reject(new Error(why));
        reject(new Error(why));
      };
      ws.on('error', (err) => fail(`WebSocket error: ${err.message}`));
      ws.on('close', (code) => {
        if (this.ws === ws || this.opening) fail(`WebSocket closed (${code}) while in use`);
      });
    });
    return this.opening;
  }
  async echo(): Promise<void> {
    const ws = await this.open();
    const sent = randomBytes(1 + Math.floor(Math.random() * 4096));
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ sent, resolve, reject }));
    ws.send(sent);
    await done;
    // A socket that has had its share is closed cleanly once idle, and the next echo opens a new one.
    if (++this.used >= WS_MESSAGES_PER_SOCKET && this.waiting.length === 0 && this.ws === ws) {
      this.ws = undefined;
      ws.close(1000);
    }
  }
  close(): void {
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000);
  }
}

/** The client's connections to the gateway; all of them close together (`Load.disconnect`). */
class Connections {
  readonly h1: Pool;
  readonly h1Tls: Pool;
  readonly h2c: H2Client;
  readonly h2Tls: H2Client;
  readonly ws: EchoSocket[];
  readonly wsTls: EchoSocket[];
  constructor(e: Endpoints) {
    this.h1 = new Pool(`http://127.0.0.1:${e.http}`, { connections: 16 });
    this.h1Tls = new Pool(`https://127.0.0.1:${e.https}`, {
      connections: 16,
      connect: { ca: e.ca, servername: 'localhost' },
    });
    this.h2c = new H2Client(`http://127.0.0.1:${e.http}`);
    this.h2Tls = new H2Client(`https://127.0.0.1:${e.https}`, e.ca);
    this.ws = Array.from({ length: WS_SOCKETS }, () => new EchoSocket(`ws://127.0.0.1:${e.http}/ws`));
    this.wsTls = Array.from({ length: WS_SOCKETS }, () => new EchoSocket(`wss://127.0.0.1:${e.https}/ws`, e.ca));
  }
  async close(): Promise<void> {
    for (const s of [...this.ws, ...this.wsTls]) s.close();
    this.h2c.close();
    this.h2Tls.close();
    await Promise.all([this.h1.close(), this.h1Tls.close()]);
  }
}

export class Load {
  private readonly e: Endpoints;
  private c: Connections;
  private readonly pick: Kind[] = [];
  inFlight = 0;
  tally = newTally();
  /** HTTP requests sent, by path, over the whole run: the backend must have received exactly these. */
  readonly sentByPath: Record<string, number> = {};

  constructor(e: Endpoints) {
    this.e = e;
    this.c = new Connections(e);
    const only = process.env.SOAK_KINDS?.split(',');
    for (const k of KINDS) if (!only || only.includes(k)) for (let i = 0; i < WEIGHTS[k]; i++) this.pick.push(k);
  }

  /** Closes every connection to the gateway (nothing may be in flight); the next request opens new ones. */
  async disconnect(): Promise<void> {
    const old = this.c;
    this.c = new Connections(this.e);
    await old.close();
  }

  close(): Promise<void> {
    return this.c.close();
  }

  /** One request of a random kind and path (faults only when `faults`); counts its outcome in `tally`. */
  async one(faults: boolean): Promise<void> {
    const kind = this.pick[Math.floor(Math.random() * this.pick.length)]!;
    const t = this.tally;
    t.byKind[kind] = (t.byKind[kind] ?? 0) + 1;
    this.inFlight++;
    const t0 = performance.now();
    let path = '/ws';
    try {
      if (kind === 'ws' || kind === 'ws-tls') {
        const sockets = kind === 'ws' ? this.c.ws : this.c.wsTls;
        await withTimeout(sockets[Math.floor(Math.random() * sockets.length)]!.echo(), kind);
        t.ok++;
      } else {
        const r = Math.random();
        let body: Buffer | undefined;
        if (faults && r < FAULT_SHARE) path = FAULTS[Math.floor(Math.random() * FAULTS.length)]!;
        else if (r < 0.7 || kind.startsWith('churn')) path = '/ok/100b';
        else if (r < 0.85) path = '/ok/64k';
        else {
          path = '/ok/echo';
          body = randomBytes(Math.floor(Math.random() * 16 * 1024));
        }
        this.sentByPath[path] = (this.sentByPath[path] ?? 0) + 1;
        let answer: Answer | Error;
        try {
          answer = await withTimeout(this.send(kind, path, body), `${kind} ${path}`);
        } catch (err) {
          answer = err as Error;
        }
        const good =
          path === '/ok/echo' && !(answer instanceof Error)
            ? answer.status === 200 && answer.body.toString() === sha256(body!)
            : expected(path, answer);
        if (!good)
          throw answer instanceof Error ? answer : new Error(`status ${answer.status}, ${answer.body.length} B`);
        if (path.startsWith('/fault/') && path !== '/fault/slow') t.expectedFaults++;
        else t.ok++;
      }
      t.latenciesMs.push(performance.now() - t0);
    } catch (err) {
      t.unexpected++;
      if (t.errors.length < 10) t.errors.push(`${kind} ${path}: ${(err as Error).message}`);
    } finally {
      this.inFlight--;
    }
  }

  private async send(kind: Kind, path: string, body: Buffer | undefined): Promise<Answer> {
    const method = body ? 'POST' : 'GET';
    const headers: Record<string, string> = body ? { 'x-sha256': sha256(body) } : {};
    switch (kind) {
      case 'h1':
      case 'h1-tls': {
        const res = await (kind === 'h1' ? this.c.h1 : this.c.h1Tls).request({ path, method, headers, body });
        return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
      }
      case 'h2c':
        return this.c.h2c.request(method, path, headers, body);
      case 'h2-tls':
        return this.c.h2Tls.request(method, path, headers, body);
      default:
        return churnRequest(kind === 'churn-tls', kind === 'churn' ? this.e.http : this.e.https, this.e.ca, path);
    }
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Closed loop, no faults: `concurrency` requests always in flight for `ms`; the answers per second. */
export async function measureCapacity(load: Load, concurrency: number, ms: number): Promise<number> {
  const end = performance.now() + ms;
  const t0 = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await load.one(false);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

/**
 * Open loop at `rate` requests per second until `stop()` says so, started in ticks of 10 ms, never more than
 * `maxInFlight` at once (what could not start is counted as shed). Resolves when the last request has ended.
 */
export async function runAtRate(load: Load, rate: number, maxInFlight: number, stop: () => boolean): Promise<void> {
  let credit = 0;
  let last = performance.now();
  const running = new Set<Promise<void>>();
  while (!stop()) {
    await new Promise((r) => setTimeout(r, 10));
    const now = performance.now();
    credit += ((now - last) / 1000) * rate;
    last = now;
    while (credit >= 1) {
      credit--;
      if (load.inFlight >= maxInFlight) {
        load.tally.shed++;
        continue;
      }
      const p = load.one(true).finally(() => running.delete(p));
      running.add(p);
    }
  }
  await Promise.all(running);
}
