// node-limit: the fewest lines of Node that pass requests through — node:http in, undici Pool out,
// no routing, no logging, no header rewriting. What a Node gateway could reach if it did nothing else.
import http from 'node:http';
import { Pool } from 'undici';
import { host, port, ready, upstream } from './common.ts';

const pool = new Pool(upstream, { connections: 128 });

const server = http.createServer(async (req, res) => {
  try {
    const { statusCode, headers, body } = await pool.request({
      path: req.url ?? '/',
      method: req.method as 'GET',
      headers: req.headers as Record<string, string>,
      body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
    });
    res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
    body.pipe(res);
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 120_000;
server.listen(port, host, ready);
