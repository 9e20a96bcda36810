// Benchmark backend: fixed bodies from precomputed buffers so the backend costs as little as possible; the same
// bodies under /cached/ carry Cache-Control (for turnpike-cache), nothing else does.
// Runs in its own process (started by bench/run.ts) so its CPU is not mixed with the proxy's.
// Usage: node bench/backend.ts --port 0   → prints the bound port on stdout.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { CACHED_CONTROL, CACHED_PREFIX } from './nginx.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
});

const bodies = new Map<string, Buffer>([
  ['/100b', Buffer.alloc(100, 'a')],
  ['/64k', Buffer.alloc(65536, 'b')],
]);

const server = http.createServer((req, res) => {
  let path = (req.url ?? '/').split('?', 1)[0]!;
  const cached = path.startsWith(CACHED_PREFIX);
  if (cached) path = path.slice(CACHED_PREFIX.length - 1);
  const body = req.method === 'GET' || req.method === 'HEAD' ? bodies.get(path) : undefined;
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 9 });
    res.end('not found');
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
    ...(cached ? { 'cache-control': CACHED_CONTROL } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
});

// Long keep-alive so neither wrk nor the proxy's pool ever sees the backend close idle sockets mid-run.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.maxRequestsPerSocket = 0;

server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : values.port}\n`);
});

// The parent holds our stdin open; when it goes away (even if it was SIGKILLed) we go too.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
