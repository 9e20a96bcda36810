// `turnpike demo`: three echo services on loopback and a gateway in front of them, so `npm start` shows
// routing, load balancing and plugins on a fresh machine with nothing else installed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway } from '../runtime/gateway.ts';
import { installSignals } from '../runtime/lifecycle.ts';

function startEcho(name: string): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(
        {
          service: name,
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8') || undefined,
        },
        null,
        2,
      );
      // The catalog is cacheable for 30 s, so the demo's cache route has something to keep.
      const caching = req.url?.startsWith('/catalog') ? { 'cache-control': 'max-age=30' } : {};
      res.writeHead(200, {
        'content-type': 'application/json',
        server: `demo-${name}`,
        'x-powered-by': 'node',
        ...caching,
      });
      res.end(body + '\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export function demoConfig(port: number, echoPorts: readonly number[], adminPort = 9901): string {
  return `# The demo's config: the same format as turnpike start --config FILE
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: ${port} }
admin: { address: 127.0.0.1, port: ${adminPort} }   # the dashboard, health, the admin API (loopback: no token)
metrics: { enabled: true }                            # GET /metrics on the admin listener
upstreams:
  echo:
    targets:
${echoPorts.map((p) => `      - url: http://127.0.0.1:${p}`).join('\n')}
routes:
  - name: echo
    match: { path: /echo }
    upstream: echo
  - name: api
    match: { path: /api, methods: [GET, POST] }
    upstream: echo
    plugins:
      - rewrite: { stripPrefix: /api, addPrefix: /v2 }
      - headers:
          request: { set: { x-gateway: turnpike } }
          response: { set: { cache-control: no-store } }
  - name: catalog
    match: { path: /catalog }
    upstream: echo
    plugins:
      - cache: { store: memory, maxSize: 64mb, maxObjectSize: 1mb, purge: { allow: [127.0.0.1/32] } }
      - compress: { minSize: 1kb }
  - name: health
    match: { path: { exact: /healthz } }
    respond: { status: 200, body: "ok" }
  - name: docs
    match: { path: /docs }
    redirect: { to: "https://github.com/", status: 301 }
`;
}

export async function runDemo(port: number, adminPort = 9901): Promise<void> {
  const echoes = await Promise.all(['echo-1', 'echo-2', 'echo-3'].map(startEcho));
  const echoPorts = echoes.map((s) => (s.address() as AddressInfo).port);
  const configText = demoConfig(port, echoPorts, adminPort);
  const gateway = await startGateway({ configText });
  const at = `http://127.0.0.1:${gateway.port()}`;
  const admin = `http://127.0.0.1:${gateway.admin!.port}`;
  process.stdout.write(`
Turnpike demo: a gateway on ${at} in front of three echo services (${echoPorts.map((p) => `127.0.0.1:${p}`).join(', ')}).

Try:
  curl ${at}/echo/hello            # run it three times: echo-1, echo-2, echo-3 answer in turn
  curl ${at}/api/users             # rewritten to /v2/users upstream, with x-gateway set
  curl -i ${at}/catalog/items      # twice: X-Cache MISS, then HIT with the same echo-N (cached 30 s)
  curl -X PURGE ${at}/catalog/items # {"purged":1}: the next GET is a MISS
  curl -i ${at}/healthz            # answered by the gateway itself
  curl -i ${at}/docs               # a 301 redirect
  curl -i ${at}/nowhere            # 404 as application/problem+json

The live dashboard: ${admin}/   (the admin API: curl ${admin}/api/upstreams; metrics: curl ${admin}/metrics)

Its config (turnpike start --config FILE takes the same):
${configText.replace(/^/gm, '  ')}
Press Ctrl+C to stop.
`);
  installSignals(gateway.runtime, null, gateway.log, () => {
    for (const e of echoes) e.close();
    process.exit(0);
  });
}
