// The soak's backend, in its own process (bench/soak.ts starts it) so its CPU and memory are not the gateway's
// nor the load's. Healthy paths under /ok, failing ones under /fault, a WebSocket echo on /ws.
// Prints its port on stdout; on a line "stats" on stdin prints one JSON line of what it received.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { WebSocketServer } from 'ws';

const SMALL = Buffer.alloc(100, 'a');
const LARGE = Buffer.alloc(64 * 1024, 'b');

/** What arrived, per path; `bodyMismatches` counts POST bodies whose sha256 was not the one announced. */
const stats = { requests: {} as Record<string, number>, bodyMismatches: 0, wsMessages: 0 };

function count(path: string): void {
  stats.requests[path] = (stats.requests[path] ?? 0) + 1;
}

function send(res: http.ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  count(path);
  switch (path) {
    case '/ok/100b':
      return send(res, 200, SMALL);
    case '/ok/64k':
      return send(res, 200, LARGE);
    case '/ok/echo': {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      req.on('end', () => {
        const digest = hash.digest('hex');
        if (digest !== req.headers['x-sha256']) stats.bodyMismatches++;
        res.writeHead(200, { 'content-type': 'text/plain', 'x-received': String(length) });
        res.end(digest);
      });
      return;
    }
    // Faults. reset: the connection dies before any answer. reset-mid: the head and part of the body, then a
    // reset. 503: a plain server error. slow: a late but complete answer. hang: no answer at all (the gateway's
    // response timeout ends it with a 504).
    case '/fault/reset':
      return void req.socket.resetAndDestroy();
    case '/fault/reset-mid':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length });
      res.write(LARGE.subarray(0, 1000), () => req.socket.resetAndDestroy());
      return;
    case '/fault/503':
      return send(res, 503, SMALL);
    case '/fault/slow':
      return void setTimeout(() => send(res, 200, SMALL), 200);
    case '/fault/hang':
      return; // the gateway gives up; its close ends this request
    default:
      return send(res, 404, SMALL);
  }
});
// A short keep-alive: its Keep-Alive hint sets how long the gateway keeps idle connections here (a longer hint
// overrides the upstream's idleTimeout), and the soak's samples wait for those to close.
server.keepAliveTimeout = 2000;
server.headersTimeout = 10_000;
server.maxRequestsPerSocket = 0;

const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
server.on('upgrade', (req, socket, head) => {
  count('/ws');
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data, isBinary) => {
      stats.wsMessages++;
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
  });
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});

// The parent holds stdin open: a line asks for the counts; its end (even if the parent was killed) ends us.
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stats') process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
