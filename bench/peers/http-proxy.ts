// http-proxy (node-http-proxy): the classic Node reverse proxy, with a keep-alive agent towards the backend.
import http from 'node:http';
import { host, peerRequire, port, ready, upstream } from './common.ts';

const httpProxy = peerRequire()('http-proxy');
const proxy = httpProxy.createProxyServer({
  target: upstream,
  agent: new http.Agent({ keepAlive: true, maxSockets: 128 }),
});
proxy.on('error', (_err: Error, _req: http.IncomingMessage, res: http.ServerResponse) => {
  if (!res.headersSent) res.writeHead(502);
  res.end();
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 120_000;
server.listen(port, host, ready);
