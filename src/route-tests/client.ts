// Sends one case's request to a listener of the run's gateway, on a connection of its own (so the gateway's side
// of it is told apart by the client's port, and no keep-alive state carries from one case to the next).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';

export interface CaseRequest {
  readonly protocol: 'http' | 'https';
  readonly port: number;
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly timeoutMs: number;
}

export interface ClientAnswer {
  readonly status: number;
  /** Names lowercase; repeated fields joined with ", " (Set-Cookie with "\n"). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The client's port: the gateway's request context has it as its peer port. */
  readonly localPort: number;
}

export function sendCaseRequest(r: CaseRequest): Promise<ClientAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: r.url.host, ...r.headers };
    if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body));
    const options = {
      host: '127.0.0.1',
      port: r.port,
      method: r.method,
      path: `${r.url.pathname}${r.url.search}`,
      headers,
      agent: false as const,
    };
    let localPort = 0;
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          out[name] = Array.isArray(value) ? value.join(name === 'set-cookie' ? '\n' : ', ') : value;
        }
        resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString('utf8'), localPort });
      });
    };
    const hostname = r.url.hostname.replace(/^\[|\]$/g, '');
    const req =
      r.protocol === 'https'
        ? httpsRequest(
            // The listener's certificate is the config's own: the run checks routing, not the chain of trust.
            { ...options, servername: isIP(hostname) ? undefined : hostname, rejectUnauthorized: false },
            onResponse,
          )
        : httpRequest(options, onResponse);
    req.on('socket', (socket) => {
      const note = () => (localPort = socket.localPort ?? 0);
      if (socket.localPort !== undefined) note();
      else socket.once('connect', note);
      socket.once('secureConnect', note);
    });
    req.setTimeout(r.timeoutMs, () => req.destroy(new Error(`no answer within ${r.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}
